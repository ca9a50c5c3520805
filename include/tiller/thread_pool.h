// A fixed set of worker threads that split loops with the calling thread.
#pragma once

#include <condition_variable>
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
  // Calls body(begin, end, thread_index) on contiguous chunks covering [0, n), one
  // chunk per thread, and returns when all are done. The body is passed by
  // reference, never copied into a std::function: no allocation per call.
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
  void work(int index);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  Task body_{};
  int64_t n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

}  // namespace tiller
