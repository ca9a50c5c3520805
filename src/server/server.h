// `tiller serve` as a library face: an OpenAI-compatible HTTP server over one
// model, with steering per request (docs/server.md). The command line only fills
// ServerOptions; everything the server does is here and in the files beside it:
//   request.*          a request body -> library values (no HTTP, no model)
//   response.*         results -> OpenAI's JSON objects and server-sent events
//   handlers.*         the endpoints: auth, prompt, steering, scheduling, writing
//   scheduler.*        who runs generations (a session per slot, for now)
//   connection_watch.* whether a client is still there
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "tiller/engine.h"
#include "tiller/sampler.h"

namespace tiller::server {

struct ServerOptions {
  std::string model_path;
  bool mmap = false;     // map the model file instead of reading it (Model::LoadOptions)
  std::string model_id;  // the name /v1/models lists and responses carry; empty: the file's stem
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: a free port, chosen at bind()
  int parallel = 1;      // sequences decoded together (continuous batching)
  int queue = 16;        // admitted generations that may wait for a slot; more get 503
  std::string vector_dir;  // control vectors by name: DIR/<name>.gguf; empty: steering by name is refused
  std::string api_key;     // when set, /v1/* needs "Authorization: Bearer <key>"
  int n_ctx = 0;           // per session; 0: the model's default (tiller/model.h)
  EngineOptions engine;    // threads and kernel level, shared by every session
  size_t max_body = 16u << 20;  // larger request bodies get 413
  SamplerParams sampling;       // the sampling fields a request leaves out
};

struct ServerState;

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the address and returns the port (the chosen one for port 0). Throws
  // tiller::Error when it cannot.
  int bind();
  // Loads the model on another thread (GET /health answers 503 until it is ready)
  // and serves until stop(). Throws tiller::Error if the model cannot be loaded.
  // `log` receives one line per event worth telling an operator (model ready,
  // each request's method, path and status).
  void serve(const std::function<void(const std::string&)>& log = {});
  // Lets the completions in flight (running or queued) finish, streams to their
  // [DONE], while new ones get 503; then stops listening, and serve() returns.
  // Returns when httplib has been told to stop. Safe from any thread, before or
  // during serve().
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tiller::server
