// A `tiller serve` process for end-to-end tests: started on a free loopback port
// (--port 0; the port is read from its "listening on" line), waited for until
// /health says ready, stopped with SIGTERM when the object goes.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace tiller::testing {

class ServerProcess {
 public:
  // `args` follow `tiller serve --host 127.0.0.1 --port 0`. Throws std::runtime_error
  // when the server does not say where it listens within `timeout_seconds`.
  ServerProcess(const std::string& binary, const std::vector<std::string>& args, int timeout_seconds = 60);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  // Polls GET /health until 200; false after timeout_seconds or if the process ended.
  bool wait_ready(int timeout_seconds = 60) const;
  // What the server wrote to stderr so far.
  std::string log() const;
  // SIGTERM, and nothing more.
  void terminate() const;
  // SIGTERM, then waits (SIGKILL after 10 s); the exit status, or 128 + signal.
  int stop();

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  std::string log_path_;
};

}  // namespace tiller::testing
