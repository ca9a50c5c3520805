#include "tiller/thread_pool.h"

#include <algorithm>

namespace tiller {

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (auto& worker : workers_) worker.join();
}

namespace {
std::pair<int64_t, int64_t> chunk_of(int64_t n, int parts, int index) {
  const int64_t per = n / parts, extra = n % parts;
  const int64_t begin = index * per + std::min<int64_t>(index, extra);
  return {begin, begin + per + (index < extra ? 1 : 0)};
}
}  // namespace

void ThreadPool::run(Task body, int64_t n) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    body(0, n, 0);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    body_ = body;
    n_ = n;
    pending_ = n_threads_ - 1;
    ++generation_;
  }
  start_.notify_all();
  const auto [begin, end] = chunk_of(n, n_threads_, 0);
  if (begin < end) body(begin, end, 0);
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return pending_ == 0; });
  body_ = {};
}

void ThreadPool::work(int index) {
  uint64_t seen = 0;
  while (true) {
    Task body;
    int64_t n;
    {
      std::unique_lock lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      body = body_;
      n = n_;
    }
    const auto [begin, end] = chunk_of(n, n_threads_, index);
    if (begin < end) body(begin, end, index);
    {
      std::lock_guard lock(mutex_);
      --pending_;
    }
    done_.notify_one();
  }
}

}  // namespace tiller
