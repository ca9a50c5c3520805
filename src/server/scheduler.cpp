#include "server/scheduler.h"

#include <exception>

namespace tiller::server {

void RequestChannel::push(GenerationEvent event) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  ready_.notify_one();
}

std::optional<GenerationEvent> RequestChannel::pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [this] { return !events_.empty(); })) return std::nullopt;
  GenerationEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

SessionPoolScheduler::SessionPoolScheduler(std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine,
                                           const SessionOptions& session_options, int parallel, int queue_capacity)
    : model_(std::move(model)),
      engine_(std::move(engine)),
      session_options_(session_options),
      parallel_(parallel),
      queue_capacity_(queue_capacity),
      running_(size_t(parallel)) {
  // The sessions are made here, before any worker starts, so that a context too
  // large for memory fails at start-up rather than in a worker.
  for (int i = 0; i < parallel; ++i) sessions_.push_back(std::make_unique<Session>(model_, engine_, session_options_));
  for (int i = 0; i < parallel; ++i) workers_.emplace_back([this, i] { work(i); });
}

SessionPoolScheduler::~SessionPoolScheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (GenerationJob& job : queue_) job.channel->cancel();
    for (auto& channel : running_) {
      if (channel) channel->cancel();
    }
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void SessionPoolScheduler::submit(std::vector<GenerationJob> jobs) {
  {
    std::lock_guard lock(mutex_);
    const int in_system = busy_ + static_cast<int>(queue_.size()) + static_cast<int>(jobs.size());
    if (stopping_ || in_system > parallel_ + queue_capacity_) {
      // A slot frees when a job ends; with no way to know when, a second is as good
      // a guess as any, and clients back off further on their own.
      throw QueueFull("the server is busy: every slot is taken and the queue is full", 1);
    }
    for (GenerationJob& job : jobs) queue_.push_back(std::move(job));
  }
  work_ready_.notify_all();
}

SchedulerStats SessionPoolScheduler::stats() const {
  std::lock_guard lock(mutex_);
  return {parallel_, busy_, static_cast<int>(queue_.size()), queue_capacity_};
}

void SessionPoolScheduler::work(int slot) {
  for (;;) {
    GenerationJob job;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      // A job whose client left while it waited costs nothing.
      if (job.channel->cancelled()) continue;
      ++busy_;
      running_[size_t(slot)] = job.channel;
    }
    GenerationEvent last = run(*sessions_[size_t(slot)], job);
    {
      std::lock_guard lock(mutex_);
      --busy_;
      running_[size_t(slot)].reset();
    }
    // The slot is free before the request hears that its job ended, so that a
    // client sending its next request on receiving this answer finds it free.
    job.channel->push(std::move(last));
  }
}

GenerationEvent SessionPoolScheduler::run(Session& session, GenerationJob& job) {
  RequestChannel& channel = *job.channel;
  try {
    session.reset();
    // The binding removes exactly its hooks when it goes, so the session is clean
    // for the next job whatever happens here.
    std::optional<SteeringBinding> binding;
    if (job.steering) binding.emplace(job.steering, session, job.layout);
    Generator generator(session, std::move(job.prompt), job.options);
    std::vector<TokenLogprob> logprobs;  // since the last event
    for (;;) {
      if (channel.cancelled()) generator.cancel();
      const size_t n_tokens = generator.result().tokens.size();
      std::optional<Generator::Step> step = generator.next();
      if (!step) break;
      // Only tokens the result keeps (not the end-of-generation token) get one.
      if (job.top_logprobs >= 0 && generator.result().tokens.size() > n_tokens) {
        logprobs.push_back(token_logprob(generator.last_logits(), step->token, job.top_logprobs,
                                         session.model().tokenizer()));
      }
      if (!step->text.empty()) {
        channel.push({GenerationEvent::Kind::Text, job.index, std::move(step->text), {}, std::move(logprobs)});
        logprobs.clear();
      }
    }
    return {GenerationEvent::Kind::Done, job.index, {}, generator.result(), std::move(logprobs)};
  } catch (const std::exception& error) {
    return {GenerationEvent::Kind::Failed, job.index, error.what(), {}, {}};
  }
}

}  // namespace tiller::server
