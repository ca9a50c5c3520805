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

namespace {

SessionOptions with_sequences(SessionOptions options, int parallel) {
  options.n_seq = parallel;
  return options;
}

}  // namespace

struct BatchingScheduler::Running {
  GenerationJob job;
  int seq = 0;
  // Declared before the generator so that it outlives nothing it steers; reset
  // when the job ends, removing exactly its hooks from the shared session.
  std::unique_ptr<SteeringBinding> binding;
  std::unique_ptr<Generator> generator;
  std::vector<TokenLogprob> logprobs;  // when asked for: the tokens' since the last event
  bool over = false;
};

BatchingScheduler::BatchingScheduler(std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine,
                                     const SessionOptions& session_options, int parallel, int queue_capacity)
    : model_(std::move(model)),
      engine_(std::move(engine)),
      parallel_(parallel),
      queue_capacity_(queue_capacity),
      // Made here, before the loop starts, so that a context too large for memory
      // fails at start-up rather than in the loop.
      session_(model_, engine_, with_sequences(session_options, parallel)),
      seq_busy_(size_t(parallel), false),
      running_channels_(size_t(parallel)) {
  thread_ = std::thread([this] { loop(); });
}

BatchingScheduler::~BatchingScheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (GenerationJob& job : queue_) job.channel->cancel();
    for (auto& channel : running_channels_) {
      if (channel) channel->cancel();
    }
  }
  work_ready_.notify_all();
  thread_.join();
}

void BatchingScheduler::submit(std::vector<GenerationJob> jobs) {
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

SchedulerStats BatchingScheduler::stats() const {
  std::lock_guard lock(mutex_);
  return {parallel_, busy_, static_cast<int>(queue_.size()), queue_capacity_};
}

std::vector<std::unique_ptr<BatchingScheduler::Running>> BatchingScheduler::admit(std::unique_lock<std::mutex>&) {
  std::vector<std::unique_ptr<Running>> admitted;
  for (int seq = 0; seq < parallel_ && !queue_.empty(); ++seq) {
    if (seq_busy_[size_t(seq)]) continue;
    while (!queue_.empty()) {
      GenerationJob job = std::move(queue_.front());
      queue_.pop_front();
      // A job whose client left while it waited costs nothing.
      if (job.channel->cancelled()) continue;
      seq_busy_[size_t(seq)] = true;
      running_channels_[size_t(seq)] = job.channel;
      ++busy_;
      auto running = std::make_unique<Running>();
      running->job = std::move(job);
      running->seq = seq;
      admitted.push_back(std::move(running));
      break;
    }
  }
  return admitted;
}

void BatchingScheduler::loop() {
  for (;;) {
    std::vector<std::unique_ptr<Running>> admitted;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty() || !running_.empty(); });
      // On stopping, the running jobs (their channels cancelled) still take one
      // more turn below, which ends each with its Done event.
      if (stopping_ && running_.empty()) return;
      if (!stopping_) admitted = admit(lock);
    }
    for (auto& job : admitted) {
      start(*job);
      if (!job->over) running_.push_back(std::move(job));
    }
    if (!running_.empty()) step_all();
    std::erase_if(running_, [](const std::unique_ptr<Running>& job) { return job->over; });
  }
}

void BatchingScheduler::start(Running& job) {
  try {
    session_.rewind(job.seq, 0);
    if (job.job.steering) {
      job.binding = std::make_unique<SteeringBinding>(job.job.steering, session_, job.job.layout, job.seq);
    }
    job.generator = std::make_unique<Generator>(session_, std::move(job.job.prompt), job.job.options, job.seq);
    if (job.job.channel->cancelled()) job.generator->cancel();
    advance(job);  // the prompt, alone, and the first token
  } catch (const std::exception& error) {
    fail_job(job, error.what());
  }
}

void BatchingScheduler::step_all() {
  // Jobs whose clients left end here, before their next token, freeing their rows.
  for (auto& job : running_) {
    if (job->over || !job->job.channel->cancelled()) continue;
    job->generator->cancel();
    try {
      advance(*job);
    } catch (const std::exception& error) {
      fail_job(*job, error.what());
    }
  }
  std::vector<int> seqs;
  std::vector<TokenId> tokens;
  std::vector<Running*> rows;
  for (auto& job : running_) {
    if (job->over) continue;
    const std::optional<TokenId> token = job->generator->pending_token();
    if (!token) continue;
    seqs.push_back(job->seq);
    tokens.push_back(*token);
    rows.push_back(job.get());
  }
  if (rows.empty()) return;
  std::span<const float> logits;
  try {
    logits = session_.decode_step(seqs, tokens);
  } catch (const std::exception& error) {
    for (Running* job : rows) fail_job(*job, error.what());
    return;
  }
  const auto n_vocab = static_cast<size_t>(model_->config().n_vocab);
  for (size_t i = 0; i < rows.size(); ++i) {
    Running& job = *rows[i];
    try {
      job.generator->supply_logits(logits.subspan(i * n_vocab, n_vocab));
      advance(job);
    } catch (const std::exception& error) {
      fail_job(job, error.what());
    }
  }
}

void BatchingScheduler::advance(Running& job) {
  Generator& generator = *job.generator;
  const size_t n_tokens = generator.result().tokens.size();
  const std::optional<Generator::Step> step = generator.next();
  // Only tokens the result keeps (not the end-of-generation token) get an entry.
  if (job.job.top_logprobs >= 0 && generator.result().tokens.size() > n_tokens) {
    job.logprobs.push_back(
        token_logprob(generator.last_logits(), step->token, job.job.top_logprobs, model_->tokenizer()));
  }
  if (step && !step->text.empty()) {
    job.job.channel->push({GenerationEvent::Kind::Text, job.job.index, step->text, {}, std::move(job.logprobs)});
    job.logprobs.clear();
  }
  if (!generator.done()) return;
  release(job, {GenerationEvent::Kind::Done, job.job.index, {}, generator.result(), std::move(job.logprobs)});
}

void BatchingScheduler::fail_job(Running& job, const std::string& message) {
  release(job, {GenerationEvent::Kind::Failed, job.job.index, message, {}, {}});
}

void BatchingScheduler::release(Running& job, GenerationEvent last) {
  job.over = true;
  job.binding.reset();
  {
    std::lock_guard lock(mutex_);
    --busy_;
    seq_busy_[size_t(job.seq)] = false;
    running_channels_[size_t(job.seq)].reset();
  }
  // The slot is free before the request hears that its job ended, so that a
  // client sending its next request on receiving this answer finds it free.
  job.job.channel->push(std::move(last));
}

}  // namespace tiller::server
