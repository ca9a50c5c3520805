// Who runs the generations a server admits, and how their output gets back to
// the request that asked.
//
// The interface is what the HTTP side sees: submit() admits a request's jobs (all
// or none, QueueFull when there is no room) and each job reports its text through
// its RequestChannel, which the handler's thread drains. Nothing on the HTTP side
// knows how jobs are run. BatchingScheduler below runs them by continuous
// batching: one loop steps every running job in one forward pass, row by row with
// each row's own steering, and pushes each row's piece to its job's channel. The
// loop never blocks on a client, which is why output goes through a channel
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

// Continuous batching: one thread and one Session holding `parallel` sequences.
// Each turn of its loop admits queued jobs into free sequences, first come first
// served, running each new job's prompt in forward passes of its own; then one
// Session::decode_step runs the last sampled token of every running job, a row
// each, each row steered by its own job's binding (hooks of that sequence only) or
// by nothing; then each job samples its next token from its row and reports the
// text. A job joins the batch at the next turn after it arrives and leaves as soon
// as it ends, so slots never wait for a whole batch to finish.
// A job's tokens are those it gets alone: its prompt runs alone, and decode_step
// computes each row as if it were alone (tiller/model.h), with the job's own
// sampler. Running the prompts outside the steps costs the other jobs a pause of
// one prompt's passes when a job starts.
class BatchingScheduler final : public Scheduler {
 public:
  BatchingScheduler(std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine,
                    const SessionOptions& session_options, int parallel, int queue_capacity);
  // Cancels what is queued and running, and joins the loop.
  ~BatchingScheduler() override;

  void submit(std::vector<GenerationJob> jobs) override;
  SchedulerStats stats() const override;

 private:
  struct Running;
  void loop();
  // Moves queued jobs into free sequences; returns them. The lock is passed only as
  // proof that the caller holds it (nothing here unlocks it).
  std::vector<std::unique_ptr<Running>> admit(std::unique_lock<std::mutex>& lock);
  // Binds the job's steering to its sequence and runs its first step (the prompt).
  void start(Running& job);
  // One step of every running job, in one forward pass.
  void step_all();
  // The job's next step (its sampled token, and its logprobs when asked); reports
  // its text, and when the job is over, frees its sequence and reports its end.
  void advance(Running& job);
  void fail_job(Running& job, const std::string& message);
  void release(Running& job, GenerationEvent last);

  std::shared_ptr<const Model> model_;
  std::shared_ptr<Engine> engine_;
  int parallel_, queue_capacity_;
  Session session_;  // only the loop's thread touches it
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<GenerationJob> queue_;
  std::vector<bool> seq_busy_;                    // per sequence
  std::vector<std::unique_ptr<Running>> running_;  // the loop's own (no lock)
  std::vector<std::shared_ptr<RequestChannel>> running_channels_;  // under the lock: for the destructor
  int busy_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace tiller::server
