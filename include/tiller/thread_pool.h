// A fixed set of worker threads that split loops with the calling thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
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
  // chunk per thread, and returns when all are done.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& body);

 private:
  void work(int index);
  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int64_t, int64_t, int)>* body_ = nullptr;
  int64_t n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
};

}  // namespace tiller
