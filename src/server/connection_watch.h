// Whether the client of a request is still connected, asked between tokens.
//
// cpp-httplib 0.11 (Debian 12's) gives a handler neither the socket nor a way to
// ask about it (Request::is_connection_closed came in later versions), and a
// streamed write fails only a token or two after the peer has gone. So the watch
// finds the connection's socket among the process's descriptors by its two
// endpoints, once per request, and then polls it. The descriptor stays this
// connection's while the handler runs: httplib closes it only after the handler
// and its content provider have returned.
#pragma once

#include <string>

namespace tiller::server {

class ConnectionWatch {
 public:
  // The socket whose local port and peer address are these; none found (not
  // Linux, an address family it does not know): closed() is always false.
  ConnectionWatch(const std::string& remote_addr, int remote_port, int local_port);
  // True once the peer has closed or reset the connection. Bytes the client has
  // sent ahead (a pipelined request) are left in place.
  bool closed() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace tiller::server
