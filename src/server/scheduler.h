// Who runs the generations a server admits, and how their output gets back to
// the request that asked.
//
// The interface is what the HTTP side sees: submit() admits a request's jobs (all
// or none, QueueFull when there is no room) and each job reports its text through
// its RequestChannel, which the handler's thread drains. Nothing on the HTTP side
// knows how jobs are run. That is deliberate: SessionPoolScheduler below, the first
// scheduler, gives each in-flight job its own Session and thread (the sessions
// share one Engine and so one thread pool), and it will be replaced by a
// continuous-batching scheduler — one loop that steps every admitted job in one
// forward pass, row by row with each row's own steering, and pushes each row's
// piece to its job's channel — behind this same submit()/channel contract. Such a
// loop must never block on a client, which is why output goes through a channel
// rather than a callback that writes to a socket.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/logprobs.h"
#include "tiller/generate.h"
#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller::server {

// What one job reports, in order: Text pieces, then Done or Failed.
struct GenerationEvent {
  enum class Kind { Text, Done, Failed };
  Kind kind = Kind::Text;
  int index = 0;     // the job's index within its request (the choice it fills)
  std::string text;  // Text: the piece; Failed: the message
  GenerationResult result;  // Done: the whole result (text, tokens, stop reason, timings)
  // When the job asked for them (top_logprobs >= 0): one entry per generated token
  // since this job's previous event, tokens whose text is still held back
  // included; a Done event carries the rest. The end-of-generation token has none.
  std::vector<TokenLogprob> logprobs;
};

// One request's events, from however many jobs it has, and its cancellation.
// Shared between the handler (one consumer) and the scheduler (producers).
class RequestChannel {
 public:
  void push(GenerationEvent event);
  // The next event, waiting at most `timeout` for it.
  std::optional<GenerationEvent> pop(std::chrono::milliseconds timeout);
  // The client is gone: jobs not started are dropped when they come up, running
  // ones end before their next token. Safe from any thread, any number of times.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<GenerationEvent> events_;
  std::atomic<bool> cancelled_{false};
};

// One sequence to generate: a tokenized prompt, its options (the seed resolved),
// and its steering (null: unsteered, computed exactly as without steering).
struct GenerationJob {
  int index = 0;
  std::vector<TokenId> prompt;
  PromptLayout layout;  // where the prompt's parts are, for the steering's positions
  GenerationOptions options;
  std::shared_ptr<const Steering> steering;
  std::shared_ptr<RequestChannel> channel;
  int top_logprobs = -1;  // -1: no logprobs; n >= 0: each token's logprob and its n best alternatives
};

struct QueueFull : std::runtime_error {
  int retry_after_seconds;
  QueueFull(const std::string& message, int retry_after) : std::runtime_error(message), retry_after_seconds(retry_after) {}
};

struct SchedulerStats {
  int parallel = 0;        // jobs that may run at once
  int busy = 0;            // jobs running now
  int queued = 0;          // admitted jobs waiting for a slot
  int queue_capacity = 0;  // how many may wait
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Admits every job or none: QueueFull when running and waiting jobs would then
  // exceed parallel + queue capacity. Jobs of one call may run in any order and
  // at once; each reports only through its channel.
  virtual void submit(std::vector<GenerationJob> jobs) = 0;
  virtual SchedulerStats stats() const = 0;
};

// The first scheduler: `parallel` worker threads, each with its own Session on the
// shared engine, taking jobs first come first served from one bounded queue. Each
// job runs alone in its session, so its tokens are those it gets alone (engine.h).
class SessionPoolScheduler final : public Scheduler {
 public:
  SessionPoolScheduler(std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine,
                       const SessionOptions& session_options, int parallel, int queue_capacity);
  // Cancels what is queued and running, and joins the workers.
  ~SessionPoolScheduler() override;

  void submit(std::vector<GenerationJob> jobs) override;
  SchedulerStats stats() const override;

 private:
  void work(int slot);
  // Runs the job, pushing its text; returns its last event (Done or Failed).
  static GenerationEvent run(Session& session, GenerationJob& job);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<Engine> engine_;
  SessionOptions session_options_;
  int parallel_, queue_capacity_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<GenerationJob> queue_;
  std::vector<std::unique_ptr<Session>> sessions_;        // per slot
  std::vector<std::shared_ptr<RequestChannel>> running_;  // per slot: the channel of the job it runs, or null
  int busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace tiller::server
