// A fixed set of worker threads that split loops with the calling thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

namespace tiller {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // n_threads counts the caller; 1 runs everything inline
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Workers that found no work for a while and sleep (or are about to) until the
  // next parallel_for; the rest spin. For tests and diagnostics.
  int sleeping_workers() const { return sleepers_.load(std::memory_order_relaxed); }
  // Calls body(begin, end, thread_index) on contiguous chunks that cover [0, n) once,
  // and returns when all are done. Each thread starts with its own chunk and then
  // takes the chunks nobody has started, so a thread that runs slower (a core the
  // machine shares with other work) is not waited for; which thread runs which
  // chunk therefore changes from call to call, and only scratch space may depend
  // on thread_index, never a result. The body is passed by
  // reference, never copied into a std::function: no allocation per call. Callers
  // on several threads at once (sessions of one Engine driven by a server) take
  // the pool in turn: each call runs alone on all the threads. Not from inside a
  // body (that would wait for itself).
  template <typename Body>
  void parallel_for(int64_t n, Body&& body) {
    using Callable = std::remove_reference_t<Body>;
    run({const_cast<void*>(static_cast<const void*>(&body)), [](void* context, int64_t begin, int64_t end, int thread) {
           (*static_cast<Callable*>(context))(begin, end, thread);
         }},
        n);
  }

 private:
  struct Task {
    void* context;
    void (*call)(void* context, int64_t begin, int64_t end, int thread);
    void operator()(int64_t begin, int64_t end, int thread) const { call(context, begin, end, thread); }
  };
  void run(Task task, int64_t n);
  void run_chunks(int index);
  void work(int index);
  void publish(Task task, int64_t n, bool stop);
  void wake_workers();
  void wait_for_workers();

  // Fork-join without a lock on the fast path: run() writes the task, then bumps
  // generation_ (a release); workers spin on generation_, run their chunks and count
  // pending_ down (a release); the caller spins until pending_ is 0 (an acquire).
  // Each side spins for a bounded time and then sleeps on mutex_ and a condition
  // variable, announcing it in sleepers_ or caller_sleeping_ so the other side
  // knows to wake it. The two groups sit on separate cache lines: on each call the
  // workers write only the second (the sleeping flags change rarely), and the
  // caller the first, besides resetting the counters of the second once and
  // taking chunks from next_chunk_ like every thread.
  static constexpr size_t kCacheLine = 64;
  alignas(kCacheLine) std::atomic<uint64_t> generation_{0};
  Task task_{};  // task_, n_, n_chunks_ and stopping_ are plain: generation_ publishes them
  int64_t n_ = 0;
  int64_t n_chunks_ = 0;
  bool stopping_ = false;
  std::atomic<int> sleepers_{0};  // workers asleep (or about to be) on wake_

  alignas(kCacheLine) std::atomic<int> pending_{0};  // workers yet to finish this generation
  std::atomic<int64_t> next_chunk_{0};               // the first chunk nobody has taken
  std::atomic<bool> caller_sleeping_{false};

  alignas(kCacheLine) std::mutex mutex_;  // only for sleeping and waking
  std::mutex callers_;                    // one parallel_for at a time (held from publish to the last chunk)
  std::condition_variable wake_, done_;
  int n_threads_;
  std::vector<std::thread> workers_;
};

}  // namespace tiller
