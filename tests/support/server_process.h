// A `tiller serve` process for end-to-end tests: started on a free loopback port
// (--port 0; the port is read from its "listening on" line), waited for until
// /health says ready, stopped with SIGTERM when the object goes.
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>

#include <memory>
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

#ifdef TILLER_BINARY  // the test files' (tests/CMakeLists.txt), not the support library's
// A test suite's server (SetUpTestSuite): `tiller serve -m model_path args...`,
// ready; or null, with a test failure carrying its log.
inline std::unique_ptr<ServerProcess> start_suite_server(const std::string& model_path,
                                                         const std::vector<std::string>& args) {
  std::vector<std::string> all = {"-m", model_path};
  all.insert(all.end(), args.begin(), args.end());
  auto server = std::make_unique<ServerProcess>(TILLER_BINARY, all);
  if (!server->wait_ready()) {
    ADD_FAILURE() << "the server never became ready:\n" << server->log();
    return nullptr;
  }
  return server;
}

// TearDownTestSuite's part: SIGTERM, expecting exit status 0; then null.
inline void stop_suite_server(std::unique_ptr<ServerProcess>& server) {
  if (server) {
    EXPECT_EQ(server->stop(), 0) << server->log();
  }
  server.reset();
}
#endif

}  // namespace tiller::testing
