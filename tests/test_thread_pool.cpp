// The thread pool under many tiny calls, uneven sizes and idle gaps long enough
// for workers to fall asleep: every index covered exactly once, by a valid thread,
// in even contiguous chunks; a thread that stalls is not waited for.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>
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

// A lost wake-up shows as a hang; this turns it into a failure. The limit is far
// beyond any healthy run (it is not a speed check): it only bounds the wait.
class Watchdog {
 public:
  explicit Watchdog(const char* what) : what_(what), thread_([this] { watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, std::chrono::minutes(5), [this] { return done_; })) {
      std::fprintf(stderr, "%s: still running after 5 minutes, a wake-up was lost\n", what_);
      std::abort();
    }
  }
  const char* what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Waits (without a time limit of its own) until every worker has given up spinning.
void wait_until_all_asleep(const ThreadPool& pool) {
  while (pool.sleeping_workers() < pool.size() - 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(ThreadPool, ChunksTileTheRangeEvenlyAndEachThreadStartsWithItsOwn) {
  // [0, n) is cut into contiguous chunks whose lengths differ by at most one; chunk
  // t (in order) goes to thread index t, the chunks beyond the thread count to
  // whichever thread is free first.
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int64_t n = 0; n <= 40; ++n) {
      struct Call {
        int64_t begin, end;
        int thread;
      };
      std::vector<Call> calls;
      std::mutex mutex;
      pool.parallel_for(n, [&](int64_t begin, int64_t end, int thread) {
        std::lock_guard lock(mutex);
        calls.push_back({begin, end, thread});
      });
      if (n == 0) {
        EXPECT_TRUE(calls.empty());
        continue;
      }
      if (threads == 1 || n == 1) {  // inline, one call for everything
        ASSERT_EQ(calls.size(), 1u);
        EXPECT_EQ(calls[0].begin, 0);
        EXPECT_EQ(calls[0].end, n);
        continue;
      }
      std::sort(calls.begin(), calls.end(), [](const Call& a, const Call& b) { return a.begin < b.begin; });
      int64_t next = 0, shortest = n, longest = 0;
      for (size_t c = 0; c < calls.size(); ++c) {
        EXPECT_EQ(calls[c].begin, next) << "n=" << n << " threads=" << threads << ": a gap or an overlap";
        EXPECT_LT(calls[c].begin, calls[c].end) << "an empty chunk ran, n=" << n;
        EXPECT_TRUE(calls[c].thread >= 0 && calls[c].thread < threads);
        if (c < static_cast<size_t>(threads)) {
          EXPECT_EQ(calls[c].thread, static_cast<int>(c)) << "n=" << n;
        }
        shortest = std::min(shortest, calls[c].end - calls[c].begin);
        longest = std::max(longest, calls[c].end - calls[c].begin);
        next = calls[c].end;
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(longest - shortest, 1) << "n=" << n << " threads=" << threads;
    }
  }
}

// A thread that stalls in its own chunk (a core the machine gives to something
// else) is not waited for: meanwhile the other threads run more than their even
// share, every chunk but the stalled one. With one fixed chunk per thread they
// could not, and the stalled thread's wait below would run out.
TEST(ThreadPool, OthersTakeTheChunksOfAThreadThatStalls) {
  const Watchdog watchdog("OthersTakeTheChunksOfAThreadThatStalls");
  for (int threads = 2; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    constexpr int64_t n = 1000;
    std::atomic<int64_t> covered{0};
    std::atomic<bool> waited_out{false}, stalled{false};
    pool.parallel_for(n, [&](int64_t begin, int64_t end, int thread) {
      if (thread == 1 && !stalled.exchange(true)) {
        // Thread 1's first chunk: stall until the others have done more than their
        // share of the rest, or give up.
        const int64_t others_share = n - n / threads;
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (covered.load() <= others_share) {
          if (std::chrono::steady_clock::now() > give_up) {
            waited_out = true;
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
      covered.fetch_add(end - begin);
    });
    EXPECT_FALSE(waited_out.load()) << threads << " threads: the others left chunks for the stalled thread";
    EXPECT_EQ(covered.load(), n);
  }
}

TEST(ThreadPool, HundredThousandBackToBackTinyCalls) {
  // Each thread adds its chunks' sums into its own slot with plain writes and the
  // caller reads them right after parallel_for returns: a missing release/acquire
  // pair shows here as a wrong sum (or as a race under ThreadSanitizer).
  const Watchdog watchdog("HundredThousandBackToBackTinyCalls");
  for (const auto& [threads, rounds] : {std::pair{2, 100000}, std::pair{3, 20000}}) {
    ThreadPool pool(threads);
    std::vector<int64_t> partial(static_cast<size_t>(threads));
    for (int round = 0; round < rounds; ++round) {
      const int64_t n = 1 + round % 9;  // includes n < threads: workers with empty chunks
      std::fill(partial.begin(), partial.end(), 0);
      pool.parallel_for(n, [&](int64_t begin, int64_t end, int thread) {
        int64_t sum = 0;
        for (int64_t i = begin; i < end; ++i) sum += i + round;
        partial[static_cast<size_t>(thread)] += sum;
      });
      int64_t total = 0;
      for (const int64_t p : partial) total += p;
      ASSERT_EQ(total, n * (n - 1) / 2 + n * round) << "threads=" << threads << " round=" << round;
    }
  }
}

TEST(ThreadPool, IdleWorkersFallAsleepAndWakeForTheNextCall) {
  const Watchdog watchdog("IdleWorkersFallAsleepAndWakeForTheNextCall");
  std::vector<int> hits;
  for (int threads = 2; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int round = 0; round < 5; ++round) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      wait_until_all_asleep(pool);  // an idle pool must stop spinning
      std::vector<std::thread::id> ran_on(static_cast<size_t>(threads));
      pool.parallel_for(threads, [&](int64_t, int64_t, int thread) {
        ran_on[static_cast<size_t>(thread)] = std::this_thread::get_id();
      });
      // Every sleeping worker woke and ran its own chunk on its own thread.
      EXPECT_EQ(ran_on[0], std::this_thread::get_id());
      for (int t = 1; t < threads; ++t) {
        EXPECT_NE(ran_on[static_cast<size_t>(t)], std::thread::id()) << "worker " << t << " did not run";
        EXPECT_NE(ran_on[static_cast<size_t>(t)], std::this_thread::get_id());
      }
      expect_covers(pool, 1000 + round, hits);
    }
  }
}

TEST(ThreadPool, DestroysWhileWorkersSpinOrSleep) {
  const Watchdog watchdog("DestroysWhileWorkersSpinOrSleep");
  std::vector<int> hits;
  for (int threads = 2; threads <= 4; ++threads) {
    for (int round = 0; round < 200; ++round) {  // right after a call: the workers are spinning
      ThreadPool pool(threads);
      expect_covers(pool, 5, hits);
    }
    {
      ThreadPool pool(threads);
      expect_covers(pool, 5, hits);
      wait_until_all_asleep(pool);
    }
    {
      ThreadPool pool(threads);  // never used: asleep from the start
      wait_until_all_asleep(pool);
    }
  }
}

TEST(ThreadPool, OneCallerThreadThatIsNotTheOwner) {
  // Built on this thread, used by others one after another, destroyed here.
  const Watchdog watchdog("OneCallerThreadThatIsNotTheOwner");
  ThreadPool pool(2);
  for (int caller = 0; caller < 3; ++caller) {
    std::thread([&pool, caller] {
      std::vector<int> hits;
      for (int round = 0; round < 2000; ++round) expect_covers(pool, 2 + (round + caller) % 17, hits);
    }).join();
    std::this_thread::sleep_for(std::chrono::milliseconds(caller == 1 ? 50 : 0));  // asleep or not
  }
}

// Sessions of one Engine share its pool and may run on different threads at once:
// callers that overlap take the pool in turn, and each call still covers every
// index exactly once with its own body (bodies of different sizes, so a mix-up shows).
TEST(ThreadPool, CallersOnSeveralThreadsAtOnceTakeTurns) {
  const Watchdog watchdog("CallersOnSeveralThreadsAtOnceTakeTurns");
  ThreadPool pool(2);
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int caller = 0; caller < 3; ++caller) {
    callers.emplace_back([&pool, &failures, caller] {
      for (int round = 0; round < 3000; ++round) {
        const int64_t n = 1 + (round * 7 + caller * 5) % 40;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (const auto& h : hits) {
          if (h.load() != 1) failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace tiller
