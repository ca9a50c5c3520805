// The thread pool under many tiny calls, uneven sizes and idle gaps long enough
// for workers to fall asleep: every index covered exactly once, by a valid thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tiller/thread_pool.h"

namespace tiller {
namespace {

// Runs parallel_for(n) and checks each index was visited exactly once.
void expect_covers(ThreadPool& pool, int64_t n, std::vector<int>& hits) {
  hits.assign(static_cast<size_t>(n), 0);
  std::atomic<int> bad_thread{0};
  pool.parallel_for(n, [&](int64_t begin, int64_t end, int thread) {
    if (thread < 0 || thread >= pool.size() || begin > end) bad_thread.fetch_add(1);
    for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
  });
  EXPECT_EQ(bad_thread.load(), 0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << "n=" << n << " i=" << i;
}

TEST(ThreadPool, ManyTinyCallsWithUnevenSizes) {
  std::vector<int> hits;
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int round = 0; round < 2000; ++round) expect_covers(pool, 1 + round % 13, hits);
    expect_covers(pool, 0, hits);
    expect_covers(pool, 100003, hits);
  }
}

TEST(ThreadPool, WakesAfterWorkersFallAsleep) {
  std::vector<int> hits;
  for (int threads = 2; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int round = 0; round < 3; ++round) {
      expect_covers(pool, 7, hits);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin budget
    }
  }
}

TEST(ThreadPool, SumsMatchAcrossThreadCounts) {
  constexpr int64_t n = 4099;
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    std::vector<int64_t> partial(static_cast<size_t>(threads), 0);
    for (int round = 0; round < 500; ++round) {
      std::fill(partial.begin(), partial.end(), 0);
      pool.parallel_for(n, [&](int64_t begin, int64_t end, int thread) {
        for (int64_t i = begin; i < end; ++i) partial[static_cast<size_t>(thread)] += i;
      });
      int64_t total = 0;
      for (const int64_t p : partial) total += p;
      ASSERT_EQ(total, n * (n - 1) / 2);
    }
  }
}

TEST(ThreadPool, DestroysCleanlyWhileIdleOrAsleep) {
  for (int threads = 1; threads <= 4; ++threads) {
    { ThreadPool fresh(threads); }
    ThreadPool pool(threads);
    std::vector<int> hits;
    expect_covers(pool, 10, hits);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace
}  // namespace tiller
