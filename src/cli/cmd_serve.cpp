// `tiller serve -m MODEL [--host H] [--port P] [--parallel N] [--queue N] [--vector-dir DIR]
// [--api-key KEY] [-c CTX] [-t THREADS] [--max-body BYTES]`: the OpenAI-compatible server
// (src/server, docs/server.md). This file only maps flags onto ServerOptions and
// owns what is the process's, not the server's: signals and stderr.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/models_dir.h"
#include "cli/options.h"
#include "server/server.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct ServeOptions {
  std::string model{kDefaultModel};
  server::ServerOptions server;
  int threads = 1;
};

void serve(ServeOptions& options) {
  server::ServerOptions config = options.server;
  config.model_path = resolve_model(options.model);
  config.mmap = mmap_requested();
  config.engine = {.n_threads = options.threads, .kernels = kernels_from_environment()};

  // A client that disconnects turns the next write into SIGPIPE, which would end
  // the process: the write's error is what the server wants instead. SIGINT and
  // SIGTERM are taken by one thread that stops the server; they are blocked
  // before any thread starts (the engine's pool starts with the server), so that
  // no other thread receives them. SIGUSR1 wakes that thread when serve() ends
  // on its own.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t signals_taken;
  sigemptyset(&signals_taken);
  for (const int signal : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&signals_taken, signal);
  pthread_sigmask(SIG_BLOCK, &signals_taken, nullptr);

  server::Server server(config);
  const int port = server.bind();
  std::mutex log_mutex;
  const auto log = [&log_mutex](const std::string& line) {
    std::lock_guard lock(log_mutex);
    fmt::print(stderr, "tiller serve: {}\n", line);
    std::fflush(stderr);
  };
  log(fmt::format("listening on http://{}:{} (model {}, loading)", config.host, port, config.model_path));

  std::thread signals([&server, &signals_taken, &log] {
    int signal = 0;
    if (sigwait(&signals_taken, &signal) == 0 && signal != SIGUSR1) {
      log(fmt::format("signal {}: stopping (no new connections; requests in flight are answered)", signal));
      server.stop();
    }
  });
  // However serve() ends, the signal thread is woken and joined.
  struct WakeAndJoin {
    std::thread& thread;
    ~WakeAndJoin() {
      pthread_kill(thread.native_handle(), SIGUSR1);
      thread.join();
    }
  } wake{signals};
  server.serve(log);
}

}  // namespace

void register_serve(CLI::App& app) {
  auto options = std::make_shared<ServeOptions>();
  server::ServerOptions& server = options->server;
  auto* command = app.add_subcommand("serve", "Serve the model over HTTP: an OpenAI-compatible API with steering");
  add_model_option(command, options->model);
  command->add_option("--host", server.host, "Address to listen on")->capture_default_str();
  command->add_option("--port", server.port, "Port to listen on; 0: any free port (printed)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  command->add_option("--parallel", server.parallel, "Sequences decoded together in one batch (each with its own steering)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  command->add_option("--queue", server.queue, "Generations that may wait for a slot; more are refused with 503")
      ->capture_default_str()->check(CLI::Range(0, 4096));
  command->add_option("--vector-dir", server.vector_dir,
                      "Folder of control vectors that requests name in 'steering' (NAME is DIR/NAME.gguf)");
  command->add_option("--api-key", server.api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  command->add_option("-c,--ctx-size", server.n_ctx, "Context size of each sequence (default: the model's, at most 4096)")
      ->check(CLI::Range(0, 1 << 24));
  add_threads_option(command, options->threads);
  command->add_option("--max-body", server.max_body, "Largest request body in bytes; larger ones get 413")
      ->capture_default_str()->check(CLI::Range(size_t(1), size_t(1) << 32));
  command->callback([options] { serve(*options); });
}

}  // namespace tiller::cli
