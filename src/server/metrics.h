// The server's counters for GET /metrics, in Prometheus' text format (0.0.4):
// requests by route and status, their durations, prompt and generated tokens,
// and generation throughput over the last minute. Thread-safe: every handler
// thread records into one Metrics; the scheduler's gauges are read at render time.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tiller::server {

struct SchedulerStats;

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;
  // The throughput gauge's window.
  static constexpr std::chrono::seconds kWindow{60};

  // One answered request: `route` is its path template ("/v1/vectors/{name}"),
  // or "other" for paths the API does not have, so that the label set stays
  // bounded whatever clients send. seconds < 0: its duration is unknown (httplib
  // refused it before routing, e.g. a body over the limit) and is not observed.
  void record_request(const std::string& route, int status, double seconds);
  // One finished generation (a job's Done result): the prompt tokens it ran, the
  // tokens it generated, and how long generating them took, ending now.
  void record_generation(int prompt_tokens, int generated_tokens, double generation_seconds,
                         Clock::time_point end = Clock::now());
  // Generated tokens per second over [now - kWindow, now]: each finished
  // generation's tokens spread evenly over its own generating time, counted for
  // the part of that time inside the window.
  double tokens_per_second(Clock::time_point now = Clock::now()) const;

  // Everything, as Prometheus' text exposition; `stats` are the scheduler's gauges.
  std::string render(const SchedulerStats& stats, int in_flight) const;

 private:
  struct Histogram {
    std::vector<uint64_t> buckets;  // cumulative counts are computed at render time
    uint64_t count = 0;
    double sum = 0.0;
  };
  struct Span {
    Clock::time_point start, end;
    int tokens;
  };
  void forget_old(Clock::time_point now);
  double window_tokens(Clock::time_point now) const;

  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> durations_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, generations_ = 0;
  std::deque<Span> recent_;  // finished generations that overlap the window
};

// Request timing: httplib runs a request's pre-routing handler, its post-routing
// handler (just before the response goes out) and its logger (after its last
// byte, a stream's included) on one thread, so a thread-local carries the request
// from one to the next.
void mark_request_start();
// Records the request this thread serves into `metrics` unless it is recorded
// already: its route, status and the seconds since mark_request_start() (none
// when httplib answered before routing, e.g. a body over the limit).
void record_request_once(Metrics& metrics, const std::string& route, int status);
// Forgets this thread's request, once its last byte is written.
void end_request();

}  // namespace tiller::server
