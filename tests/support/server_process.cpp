#include "support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>

extern char** environ;

namespace tiller::testing {
namespace {

using namespace std::chrono_literals;

bool exited(pid_t pid, int* status) { return ::waitpid(pid, status, WNOHANG) == pid; }

}  // namespace

ServerProcess::ServerProcess(const std::string& binary, const std::vector<std::string>& args, int timeout_seconds) {
  char pattern[] = "/tmp/tiller-serve-log-XXXXXX";
  const int fd = ::mkstemp(pattern);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  ::close(fd);
  log_path_ = pattern;
  std::vector<std::string> argv = {binary, "serve", "--host", "127.0.0.1", "--port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path_.c_str(), O_WRONLY | O_APPEND, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path_.c_str(), O_WRONLY | O_APPEND, 0);
  std::vector<char*> raw;
  for (auto& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw std::runtime_error("cannot start " + binary);

  const std::string marker = "listening on http://127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = log();
    if (const size_t at = text.find(marker); at != std::string::npos) {
      port_ = std::atoi(text.c_str() + at + marker.size());
      return;
    }
    int status = 0;
    if (exited(pid_, &status)) {
      pid_ = -1;
      throw std::runtime_error("tiller serve ended before listening:\n" + text);
    }
    std::this_thread::sleep_for(20ms);
  }
  stop();
  throw std::runtime_error("tiller serve did not say where it listens:\n" + log());
}

ServerProcess::~ServerProcess() {
  stop();
  std::remove(log_path_.c_str());
}

bool ServerProcess::wait_ready(int timeout_seconds) const {
  httplib::Client client("127.0.0.1", port_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto res = client.Get("/health"); res && res->status == 200) return true;
    if (pid_ < 0 || ::kill(pid_, 0) != 0) return false;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string ServerProcess::log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void ServerProcess::terminate() const {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
}

int ServerProcess::stop() {
  if (pid_ < 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool done = false;
  while (!(done = exited(pid_, &status)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  if (!done) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace tiller::testing
