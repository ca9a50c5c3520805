// What the handlers share: the options, the model once loaded, the scheduler.
// The model and scheduler are written once by the loading thread before `ready`
// is set (release) and only read after it is seen (acquire).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "server/metrics.h"
#include "server/scheduler.h"
#include "server/server.h"
#include "server/vector_registry.h"
#include "tiller/chat.h"
#include "tiller/engine.h"
#include "tiller/model.h"

namespace tiller::server {

struct ServerState {
  ServerOptions options;
  std::string model_id;
  int64_t created = 0;  // Unix seconds when the server started
  std::atomic<bool> ready{false};
  // After stop(): new completions get 503 while the `in_flight` ones (admitted,
  // their responses not yet written to the end) finish; then httplib stops.
  // A handler counts itself before it looks at `draining`, and stop() sets
  // `draining` before it reads the count, so that no request slips between.
  std::atomic<bool> draining{false};
  std::atomic<int> in_flight{0};
  std::shared_ptr<Engine> engine;
  std::shared_ptr<const Model> model;
  int n_ctx = 0;                              // each session's context
  std::optional<ChatFormat> chat_format;      // the model's, when Tiller knows it
  std::string chat_format_error;              // why not, otherwise
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<VectorRegistry> vectors;  // --vector-dir (empty without it), checked against `model`
  Metrics metrics;  // GET /metrics
};

}  // namespace tiller::server
