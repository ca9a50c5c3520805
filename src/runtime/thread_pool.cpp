#include "tiller/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tiller {

namespace {

// Token generation calls parallel_for some 200 times per token with tens of
// microseconds of work each, and the caller's serial work between two calls is
// shorter still: a worker that slept between calls would pay a futex wake-up
// (5-50 us) every time. So both sides spin first. After kSpinFor without news
// they sleep, so that an idle pool (a chat waiting for its user) costs no CPU.
constexpr auto kSpinFor = std::chrono::microseconds(100);
// For the first kPauseOnlyFor they only pause; after that they also yield now and
// then, in case more threads than cores want the CPU that the spinning one holds.
constexpr auto kPauseOnlyFor = std::chrono::microseconds(20);
// Between two clock reads a spinner pauses kSpinsPerClockRead times, a few
// microseconds. A gap longer than kLostCpu means the thread was descheduled: the
// cores are oversubscribed (other processes, or more pool threads than cores).
// Spinning then holds a core that the thread we wait for may need, and it spends
// our share of the CPU, so that the scheduler makes us wait when we are woken
// (Linux's EEVDF keeps that debt across a sleep): on a busy machine, a pool that
// keeps spinning was measured 10-100 times slower per call than one that sleeps.
// So once any thread notices it lost the CPU, all threads skip spinning and sleep
// at once for the next kBackOff, then try spinning again.
constexpr auto kLostCpu = std::chrono::microseconds(50);
constexpr auto kBackOff = std::chrono::milliseconds(100);
constexpr unsigned kSpinsPerClockRead = 64;  // reading the clock costs ~20 ns; a pause ~10-40

using Clock = std::chrono::steady_clock;
// Until when nobody spins (in clock ticks; 0: spinning is allowed). Process-wide,
// as contention is the machine's and the thread that notices it may not be the
// one spinning in vain. Relaxed throughout: it is a hint, it publishes no data.
std::atomic<Clock::rep> no_spin_until{0};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();  // eases the spin on the core (and on an SMT sibling)
#endif
}

// Spins until done() is true (returns true), or until kSpinFor has passed or
// spinning is off for now (returns false: the caller should sleep).
template <typename Done>
bool spin_until(Done done) {
  if (Clock::rep until = no_spin_until.load(std::memory_order_relaxed); until != 0) {
    if (Clock::now().time_since_epoch().count() < until) return done();
    no_spin_until.compare_exchange_strong(until, 0, std::memory_order_relaxed);
  }
  for (unsigned spins = 0; spins < kSpinsPerClockRead; ++spins) {  // most waits end here
    if (done()) return true;
    cpu_relax();
  }
  // A longer wait reads the clock now and then, for the budget and to notice a
  // lost CPU, including on the way out: a thread descheduled while it spun often
  // finds the news waiting when it runs again.
  const auto start = Clock::now();
  auto last = start;
  for (unsigned spins = 1;; ++spins) {
    const bool news = done();
    if (news || spins % kSpinsPerClockRead == 0) {
      const auto now = Clock::now();
      if (now - last >= kLostCpu) {
        no_spin_until.store((now + kBackOff).time_since_epoch().count(), std::memory_order_relaxed);
        return news || done();
      }
      if (news) return true;
      if (now - start >= kSpinFor) return done();
      last = now;
      if (now - start >= kPauseOnlyFor) std::this_thread::yield();
    }
    cpu_relax();
  }
}

// Chunks per thread: each thread's first chunk is its own, the rest go to whoever
// is free first. More chunks balance better when one core runs slower (a shared
// machine, another process) and cost one more shared counter increment each.
constexpr int64_t kChunksPerThread = 4;

std::pair<int64_t, int64_t> chunk_of(int64_t n, int64_t parts, int64_t index) {
  const int64_t per = n / parts, extra = n % parts;
  const int64_t begin = index * per + std::min<int64_t>(index, extra);
  return {begin, begin + per + (index < extra ? 1 : 0)};
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  // A generation with stopping_ set: spinning workers see it like a task, and
  // sleeping ones are woken the same way.
  publish({}, 0, /*stop=*/true);
  for (auto& worker : workers_) worker.join();
}

// Hands a generation to the workers. One caller at a time calls this (run holds
// callers_; the destructor runs when no caller is left), and only
// once the previous generation is finished (pending_ was 0), so no worker is
// reading task_, n_ or stopping_ while they are written here.
void ThreadPool::publish(Task task, int64_t n, bool stop) {
  task_ = task;
  n_ = n;
  n_chunks_ = std::min<int64_t>(n, int64_t{n_threads_} * kChunksPerThread);
  stopping_ = stop;
  // Relaxed, like pending_: the threads that take chunks see it after the
  // generation's release (and the caller wrote it itself).
  next_chunk_.store(n_threads_, std::memory_order_relaxed);
  // Relaxed: a worker counts pending_ down only after it has seen the new
  // generation, whose release below orders this store before its decrement; the
  // caller reads pending_ later in its own thread.
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // Release, so that a worker whose acquire load sees the new generation also sees
  // task_, n_, stopping_ and pending_. Sequentially consistent as well, for the
  // check of sleepers_ that follows: see where a worker goes to sleep in work().
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_workers();
}

void ThreadPool::wake_workers() {
  // A worker counts itself in sleepers_ while holding mutex_ and releases it only
  // inside wake_.wait. Taking the mutex here therefore means every counted worker
  // is either already waiting (and gets the notify) or has seen the new
  // generation; without it the notify could fall between a worker's last check
  // and its wait, and be lost.
  { std::lock_guard lock(mutex_); }
  wake_.notify_all();
}

void ThreadPool::run(Task task, int64_t n) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    task(0, n, 0);  // touches none of the pool's state: no need to wait for another caller
    return;
  }
  // Uncontended (one session per pool) this costs one atomic exchange each way.
  std::lock_guard caller(callers_);
  publish(task, n, /*stop=*/false);
  run_chunks(0);
  wait_for_workers();
}

// Thread `index` runs chunk `index`, then the untaken ones. Every thread's last
// increment of next_chunk_ comes before its count down of pending_ (or, for the
// caller, before it waits), so the next publish resets a counter nobody uses.
void ThreadPool::run_chunks(int index) {
  const auto run_chunk = [&](int64_t chunk) {
    const auto [begin, end] = chunk_of(n_, n_chunks_, chunk);
    task_(begin, end, index);
  };
  if (index < n_chunks_) run_chunk(index);
  for (int64_t chunk; (chunk = next_chunk_.fetch_add(1, std::memory_order_relaxed)) < n_chunks_;) run_chunk(chunk);
}

void ThreadPool::wait_for_workers() {
  // Acquire: each worker's decrement is a release and the decrements form one
  // release sequence, so reading 0 makes every worker's writes visible here.
  const auto all_done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (spin_until(all_done)) return;
  std::unique_lock lock(mutex_);
  // The same handshake as the workers' sleep, the other way round: announce, then
  // check (both sequentially consistent), while the last worker counts down, then
  // checks the announcement. At least one of us sees the other's write.
  caller_sleeping_.store(true, std::memory_order_seq_cst);
  done_.wait(lock, [this] { return pending_.load(std::memory_order_seq_cst) == 0; });
  caller_sleeping_.store(false, std::memory_order_relaxed);  // a stale true costs one spare notify
}

void ThreadPool::work(int index) {
  uint64_t seen = 0;
  while (true) {
    // Acquire pairs with publish's release: task_, n_ and stopping_ are then visible.
    const auto has_news = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(has_news)) {
      // Going to sleep: announce it in sleepers_, then check the generation, both
      // sequentially consistent, while publish bumps the generation, then checks
      // sleepers_. In the single order of those four operations one side comes
      // second and sees the other's write: either this worker sees the new
      // generation, or publish sees the sleeper and wakes it (taking mutex_
      // first, so not before this worker waits).
      std::unique_lock lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);  // a stale count costs one spare notify
    }
    // One generation at a time: the caller cannot publish the next one before this
    // worker has counted this one down, so the generation is exactly seen + 1.
    ++seen;
    if (stopping_) return;
    run_chunks(index);
    // Release, so the caller sees this worker's chunks' writes; sequentially consistent for
    // the handshake in wait_for_workers. After this the caller may publish the next
    // generation: task_ and n_ must not be read again.
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_sleeping_.load(std::memory_order_seq_cst)) {
      { std::lock_guard lock(mutex_); }  // as in wake_workers: the caller is in done_.wait or has seen 0
      done_.notify_one();
    }
  }
}

}  // namespace tiller
