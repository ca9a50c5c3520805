#include "server/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "server/scheduler.h"

namespace tiller::server {
namespace {

// Seconds: from a health check to a long generation on a slow CPU.
constexpr std::array<double, 14> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

// A label value with Prometheus' three escapes.
std::string label(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double x) {
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", x);
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

struct RequestInFlight {
  std::optional<Metrics::Clock::time_point> start;
  bool recorded = false;
};
thread_local RequestInFlight this_request;

}  // namespace

void mark_request_start() { this_request = {Metrics::Clock::now(), false}; }

void record_request_once(Metrics& metrics, const std::string& route, int status) {
  if (this_request.recorded) return;
  const double seconds =
      this_request.start ? std::chrono::duration<double>(Metrics::Clock::now() - *this_request.start).count() : -1.0;
  metrics.record_request(route, status, seconds);
  this_request.recorded = true;
}

void end_request() { this_request = {}; }

void Metrics::record_request(const std::string& route, int status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  if (seconds < 0) return;
  Histogram& h = durations_[route];
  if (h.buckets.empty()) h.buckets.assign(kBuckets.size(), 0);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::record_generation(int prompt_tokens, int generated_tokens, double generation_seconds,
                                Clock::time_point end) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += uint64_t(std::max(prompt_tokens, 0));
  generated_tokens_ += uint64_t(std::max(generated_tokens, 0));
  ++generations_;
  if (generated_tokens <= 0) return;
  const auto length = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
      std::max(generation_seconds, 0.0)));
  recent_.push_back({end - length, end, generated_tokens});
  forget_old(end);
}

void Metrics::forget_old(Clock::time_point now) {
  // Spans end in about the order they are recorded; one that ends late behind an
  // old one is kept a little longer, which changes no sum.
  while (!recent_.empty() && recent_.front().end < now - kWindow) recent_.pop_front();
}

double Metrics::window_tokens(Clock::time_point now) const {
  const Clock::time_point from = now - kWindow;
  double tokens = 0.0;
  for (const Span& span : recent_) {
    const auto start = std::max(span.start, from), end = std::min(span.end, now);
    if (end <= start && span.end > span.start) continue;
    if (span.end <= span.start) {  // no measurable time: all its tokens at its end
      if (span.end >= from && span.end <= now) tokens += span.tokens;
      continue;
    }
    tokens += span.tokens * std::chrono::duration<double>(end - start).count() /
              std::chrono::duration<double>(span.end - span.start).count();
  }
  return tokens;
}

double Metrics::tokens_per_second(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  return window_tokens(now) / std::chrono::duration<double>(kWindow).count();
}

std::string Metrics::render(const SchedulerStats& stats, int in_flight) const {
  const double rate = tokens_per_second();
  std::lock_guard lock(mutex_);
  std::string out;
  header(out, "tiller_requests_total", "counter",
         "HTTP requests answered, by route (path template; 'other' for paths the API lacks) and status code.");
  for (const auto& [key, count] : requests_) {
    out += fmt::format("tiller_requests_total{{path=\"{}\",code=\"{}\"}} {}\n", label(key.first), key.second, count);
  }
  header(out, "tiller_request_duration_seconds", "histogram",
         "Time from routing a request to the end of its response (a stream's last byte), by route.");
  for (const auto& [route, h] : durations_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i];
      out += fmt::format("tiller_request_duration_seconds_bucket{{path=\"{}\",le=\"{}\"}} {}\n", label(route),
                         number(kBuckets[i]), cumulative);
    }
    out += fmt::format("tiller_request_duration_seconds_bucket{{path=\"{}\",le=\"+Inf\"}} {}\n", label(route), h.count);
    out += fmt::format("tiller_request_duration_seconds_sum{{path=\"{}\"}} {}\n", label(route), number(h.sum));
    out += fmt::format("tiller_request_duration_seconds_count{{path=\"{}\"}} {}\n", label(route), h.count);
  }
  header(out, "tiller_prompt_tokens_total", "counter",
         "Prompt tokens run by finished generations (a compare request runs its prompt twice).");
  out += fmt::format("tiller_prompt_tokens_total {}\n", prompt_tokens_);
  header(out, "tiller_generated_tokens_total", "counter", "Tokens generated by finished generations.");
  out += fmt::format("tiller_generated_tokens_total {}\n", generated_tokens_);
  header(out, "tiller_generations_total", "counter", "Generations finished (one per choice).");
  out += fmt::format("tiller_generations_total {}\n", generations_);
  header(out, "tiller_generation_tokens_per_second", "gauge",
         "Generated tokens per second over the last 60 seconds, all slots together (each finished generation's "
         "tokens spread over its own generating time; generations still running are not yet counted).");
  out += fmt::format("tiller_generation_tokens_per_second {}\n", number(rate));
  header(out, "tiller_queue_length", "gauge", "Admitted generations waiting for a slot.");
  out += fmt::format("tiller_queue_length {}\n", stats.queued);
  header(out, "tiller_queue_capacity", "gauge", "Generations that may wait for a slot (--queue).");
  out += fmt::format("tiller_queue_capacity {}\n", stats.queue_capacity);
  header(out, "tiller_slots_busy", "gauge", "Slots generating now.");
  out += fmt::format("tiller_slots_busy {}\n", stats.busy);
  header(out, "tiller_slots", "gauge", "Slots: generations that may run at once (--parallel).");
  out += fmt::format("tiller_slots {}\n", stats.parallel);
  header(out, "tiller_requests_in_flight", "gauge", "Completion requests admitted and not yet fully answered.");
  out += fmt::format("tiller_requests_in_flight {}\n", in_flight);
  return out;
}

}  // namespace tiller::server
