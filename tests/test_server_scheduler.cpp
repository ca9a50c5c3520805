// The server's scheduler contract (src/server/scheduler.h) on a tiny model, kept by
// the continuous-batching scheduler.
// Each job's text is what it gets alone; admission is all or none within parallel
// + queue; a cancelled job ends before its next token and a cancelled queued job
// never runs; the destructor ends running jobs.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "server/scheduler.h"
#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/generate.h"

namespace tiller::server {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const Model> scheduler_model() {
  static const std::shared_ptr<const Model> model = [] {
    const std::string path = (testing::scratch_dir() / "scheduler.gguf").string();
    testing::make_tiny_model({}).write(path);
    return Model::load(path);
  }();
  return model;
}

constexpr int kContext = 8192;

std::shared_ptr<Engine> engine_with(int n_threads) {
  EngineOptions options;
  options.n_threads = n_threads;
  return Engine::create(options);
}

GenerationJob job(std::shared_ptr<RequestChannel> channel, int n_predict, uint64_t seed, int index = 0) {
  GenerationJob out;
  out.index = index;
  out.prompt = {1, 5, 9, 13};
  out.layout = {0, 4, 0};
  out.options.n_predict = n_predict;
  out.options.ignore_eos = true;
  out.options.sampling.seed = seed;
  out.channel = std::move(channel);
  return out;
}

// Drains a channel until its job's last event (or the timeout); the text pieces
// joined, and the last event.
struct Drained {
  std::string text;
  std::optional<GenerationEvent> last;
};
Drained drain(RequestChannel& channel, std::chrono::seconds timeout = 60s) {
  Drained out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::optional<GenerationEvent> event = channel.pop(10ms);
    if (!event) continue;
    if (event->kind == GenerationEvent::Kind::Text) {
      out.text += event->text;
      continue;
    }
    out.last = std::move(event);
    break;
  }
  return out;
}

TEST(ServerScheduler, EachJobGivesWhatItGetsAlone) {
  const auto model = scheduler_model();
  const auto engine = engine_with(2);
  BatchingScheduler scheduler(model, engine, {.n_ctx = kContext}, 2, 4);
  std::vector<std::shared_ptr<RequestChannel>> channels;
  std::vector<GenerationJob> jobs;
  for (int i = 0; i < 5; ++i) {
    channels.push_back(std::make_shared<RequestChannel>());
    jobs.push_back(job(channels.back(), 12, uint64_t(100 + i)));
  }
  // Five jobs in one submit (2 run, 3 wait): admitted together.
  scheduler.submit(jobs);
  for (int i = 0; i < 5; ++i) {
    Session alone(model, engine, {.n_ctx = kContext});
    const GenerationResult expected = generate(alone, jobs[size_t(i)].prompt, jobs[size_t(i)].options);
    const Drained got = drain(*channels[size_t(i)]);
    ASSERT_TRUE(got.last) << i;
    ASSERT_EQ(got.last->kind, GenerationEvent::Kind::Done) << got.last->text;
    EXPECT_EQ(got.last->result.tokens, expected.tokens) << i;
    EXPECT_EQ(got.last->result.text, expected.text) << i;
    EXPECT_EQ(got.text, expected.text) << i;  // the pieces add up to the whole
  }
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.busy, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.parallel, 2);
  EXPECT_EQ(stats.queue_capacity, 4);
}

TEST(ServerScheduler, AdmissionIsAllOrNoneAndCancellingFreesTheSlot) {
  const auto model = scheduler_model();
  BatchingScheduler scheduler(model, engine_with(1), {.n_ctx = kContext}, 1, 1);
  auto running = std::make_shared<RequestChannel>();
  scheduler.submit({job(running, kContext - 8, 1)});  // thousands of tokens: it runs until cancelled
  std::optional<GenerationEvent> first = running->pop(30s);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->kind, GenerationEvent::Kind::Text);

  // One slot taken, one place in the queue: two more jobs at once do not fit, one does.
  auto pair = std::make_shared<RequestChannel>();
  EXPECT_THROW(scheduler.submit({job(pair, 4, 2, 0), job(pair, 4, 2, 1)}), QueueFull);
  auto waiting = std::make_shared<RequestChannel>();
  scheduler.submit({job(waiting, 4, 3)});
  EXPECT_EQ(scheduler.stats().busy, 1);
  EXPECT_EQ(scheduler.stats().queued, 1);
  EXPECT_THROW(scheduler.submit({job(std::make_shared<RequestChannel>(), 4, 4)}), QueueFull);
  EXPECT_FALSE(pair->pop(50ms));  // a refused job never runs

  running->cancel();
  const Drained ended = drain(*running);
  ASSERT_TRUE(ended.last);
  ASSERT_EQ(ended.last->kind, GenerationEvent::Kind::Done);
  EXPECT_EQ(ended.last->result.reason, StopReason::Cancelled);
  EXPECT_LT(ended.last->result.tokens.size(), size_t(kContext - 8));
  const Drained next = drain(*waiting);
  ASSERT_TRUE(next.last);
  EXPECT_EQ(next.last->kind, GenerationEvent::Kind::Done);
  EXPECT_EQ(next.last->result.tokens.size(), 4u);
}

TEST(ServerScheduler, ACancelledQueuedJobNeverRuns) {
  const auto model = scheduler_model();
  BatchingScheduler scheduler(model, engine_with(1), {.n_ctx = kContext}, 1, 2);
  auto running = std::make_shared<RequestChannel>();
  auto dropped = std::make_shared<RequestChannel>();
  auto after = std::make_shared<RequestChannel>();
  scheduler.submit({job(running, kContext - 8, 1)});
  ASSERT_TRUE(running->pop(30s));
  scheduler.submit({job(dropped, 4, 2)});
  scheduler.submit({job(after, 4, 3)});
  dropped->cancel();
  running->cancel();
  EXPECT_TRUE(drain(*running).last);
  const Drained next = drain(*after);
  ASSERT_TRUE(next.last);
  EXPECT_EQ(next.last->result.tokens.size(), 4u);
  EXPECT_FALSE(dropped->pop(50ms));  // not a token, not even a Done
  EXPECT_EQ(scheduler.stats().busy, 0);
  EXPECT_EQ(scheduler.stats().queued, 0);
}

TEST(ServerScheduler, TheDestructorEndsRunningJobs) {
  const auto model = scheduler_model();
  auto running = std::make_shared<RequestChannel>();
  const auto start = std::chrono::steady_clock::now();
  {
    BatchingScheduler scheduler(model, engine_with(1), {.n_ctx = kContext}, 1, 0);
    scheduler.submit({job(running, kContext - 8, 1)});
    ASSERT_TRUE(running->pop(30s));
  }
  EXPECT_TRUE(running->cancelled());
  const Drained ended = drain(*running, 1s);
  ASSERT_TRUE(ended.last);
  EXPECT_EQ(ended.last->result.reason, StopReason::Cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
}

}  // namespace
}  // namespace tiller::server
