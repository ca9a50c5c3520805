#include "cli/progress.h"

#include <cstdio>

#include <fmt/format.h>
#include <unistd.h>

namespace tiller::cli {

ProgressBar::ProgressBar(std::string label, std::string unit, size_t total)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(size_t done, std::optional<size_t> tokens) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  constexpr size_t kWidth = 30;
  const size_t filled = total_ > 0 ? kWidth * done / total_ : kWidth;
  const std::string eta = rate > 0 && done < total_
                              ? fmt::format("  {:.0f} s left", static_cast<double>(total_ - done) / rate)
                              : std::string();
  const std::string token_rate =
      tokens && seconds > 0 ? fmt::format("  {:.0f} tokens/s", static_cast<double>(*tokens) / seconds) : std::string();
  fmt::print(stderr, "\r{}: [{}{}] {}/{} {}  {:.1f} {}/s{}{}\x1b[K", label_, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), done, total_, unit_, rate, unit_, token_rate, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace tiller::cli
