#include "server/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/fail.h"
#include "server/handlers.h"
#include "server/openapi.h"
#include "server/server_state.h"
#include "tiller/error.h"
#include "tiller/prompt.h"

namespace tiller::server {

struct Server::Impl {
  ServerState state;
  httplib::Server http;
  bool bound = false;
  // stop() may come from another thread before listening has begun, when httplib's
  // own stop() does nothing; these two close that window (see stop()).
  std::atomic<bool> stop_requested{false}, serving{false};
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  ServerState& state = impl_->state;
  if (options.parallel < 1) fail("--parallel must be at least 1");
  if (options.queue < 0) fail("--queue must not be negative");
  if (!options.vector_dir.empty() && !std::filesystem::is_directory(options.vector_dir)) {
    fail("--vector-dir {}: not a folder", options.vector_dir);
  }
  state.model_id = options.model_id.empty() ? std::filesystem::path(options.model_path).stem().string()
                                            : options.model_id;
  state.created = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  state.engine = Engine::create(options.engine);  // refuses a kernel level this CPU lacks, before any work
  state.options = std::move(options);

  httplib::Server& http = impl_->http;
  http.set_payload_max_length(state.options.max_body);
  // Every admitted request holds an httplib thread while it waits and streams, so
  // the pool has room for all of them plus a few for health checks and refusals;
  // below that, requests would wait inside httplib, never seeing a 503.
  const size_t threads = size_t(state.options.parallel + state.options.queue) + 4;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  register_handlers(http, state);
}

Server::~Server() { stop(); }

int Server::bind() {
  const ServerOptions& options = impl_->state.options;
  int port = options.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(options.host);
    if (port < 0) fail("cannot listen on {}: no free port", options.host);
  } else if (!impl_->http.bind_to_port(options.host, port)) {
    fail("cannot listen on {}:{} (in use, or not an address of this machine)", options.host, port);
  }
  impl_->bound = true;
  return port;
}

void Server::serve(const std::function<void(const std::string&)>& log) {
  if (!impl_->bound) bind();
  ServerState& state = impl_->state;
  // A response with a body is counted just before it is written, so that a client
  // which has read it and then scrapes /metrics finds it there; a stream
  // (httplib's content provider) is counted once written to its end.
  impl_->http.set_post_routing_handler([&state](const httplib::Request& req, httplib::Response& res) {
    if (!res.content_provider_) record_request_once(state.metrics, route_template(req.path), res.status);
  });
  // Called once each response has been written (a stream's to its end).
  impl_->http.set_logger([log, &state](const httplib::Request& req, const httplib::Response& res) {
    record_request_once(state.metrics, route_template(req.path), res.status);
    end_request();
    if (log) log(req.method + " " + req.path + " " + std::to_string(res.status));
  });
  std::exception_ptr load_error;
  std::thread loader([&] {
    try {
      state.model = Model::load(state.options.model_path, {.mmap = state.options.mmap});
      state.n_ctx = state.options.n_ctx > 0 ? state.options.n_ctx : default_context_size(state.model->config());
      try {
        state.chat_format = PromptFormat::chat_with(*state.model).format;
      } catch (const Error& error) {
        state.chat_format_error = error.what();  // /v1/completions still works
      }
      state.scheduler = std::make_unique<BatchingScheduler>(
          state.model, state.engine, SessionOptions{.n_ctx = state.n_ctx}, state.options.parallel,
          state.options.queue);
      state.vectors = std::make_unique<VectorRegistry>(state.options.vector_dir, state.model);
      state.ready.store(true, std::memory_order_release);
      if (log) log("model " + state.model_id + " ready (" + std::to_string(state.n_ctx) + " positions per session)");
    } catch (...) {
      load_error = std::current_exception();
      stop();
    }
  });
  impl_->serving = true;
  // stop() lets the requests in flight finish before it stops httplib, which then
  // closes the listening socket and joins its threads (an idle keep-alive
  // connection within httplib's keep-alive timeout, 5 s).
  if (!impl_->stop_requested) impl_->http.listen_after_bind();
  impl_->serving = false;
  loader.join();
  // Every handler has returned, so no job is left but those whose clients left
  // (cancelled); the workers are joined before the model and the engine go.
  state.ready.store(false, std::memory_order_release);
  state.scheduler.reset();
  if (load_error) std::rethrow_exception(load_error);
}

void Server::stop() {
  // httplib's stop() would cut streams short (its chunked writer ends when the
  // listening socket closes), so the requests in flight finish first; new ones
  // meanwhile get 503, and /health says "stopping" to load balancers.
  ServerState& state = impl_->state;
  state.draining = true;
  while (state.in_flight.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl_->stop_requested = true;
  // serve() has either not yet looked at stop_requested (and will not listen) or
  // is about to listen: then wait until httplib runs, so that its stop() works.
  while (impl_->serving && !impl_->http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->http.stop();
}

}  // namespace tiller::server
