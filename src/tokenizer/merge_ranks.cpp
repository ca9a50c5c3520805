#include "tokenizer/merge_ranks.h"

#include <functional>
#include <limits>

#include "common/fail.h"

namespace tiller {

MergeRanks::MergeRanks(const std::vector<std::string>& merges) {
  size_t n_chars = 0;
  for (const std::string& merge : merges) n_chars += merge.size();
  if (n_chars > std::numeric_limits<uint32_t>::max()) fail("tokenizer merges: {} bytes of merges are too many", n_chars);
  chars_.reserve(n_chars);
  starts_.reserve(merges.size() + 1);
  left_sizes_.reserve(merges.size());
  size_t n_slots = 16;
  while (n_slots < 2 * merges.size()) n_slots *= 2;
  slots_.assign(n_slots, -1);
  starts_.push_back(0);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view merge = merges[rank];
    const size_t space = merge.find(' ', 1);
    const std::string_view left = space == std::string_view::npos ? std::string_view() : merge.substr(0, space);
    const std::string_view right = space == std::string_view::npos ? std::string_view() : merge.substr(space + 1);
    if (left.size() > std::numeric_limits<uint16_t>::max()) {
      fail("tokenizer merge {}: a left half of {} bytes is too long", rank, left.size());
    }
    chars_.append(left).append(right);
    starts_.push_back(static_cast<uint32_t>(chars_.size()));
    left_sizes_.push_back(static_cast<uint16_t>(left.size()));
    if (space == std::string_view::npos) continue;  // symbols are never empty: no pair matches it
    int32_t& slot = slots_[slot_of(left, right)];
    if (slot < 0) slot = static_cast<int32_t>(rank);
  }
}

int32_t MergeRanks::find(std::string_view left, std::string_view right) const {
  return slots_[slot_of(left, right)];
}

uint64_t MergeRanks::hash(std::string_view left, std::string_view right) {
  const uint64_t a = std::hash<std::string_view>{}(left), b = std::hash<std::string_view>{}(right);
  return (a * 0x9e3779b97f4a7c15ull) ^ b;  // an odd multiplier: (x, y) and (y, x) part ways
}

std::string_view MergeRanks::left_of(int32_t rank) const {
  const auto r = static_cast<size_t>(rank);
  return std::string_view(chars_).substr(starts_[r], left_sizes_[r]);
}

std::string_view MergeRanks::right_of(int32_t rank) const {
  const auto r = static_cast<size_t>(rank);
  const size_t begin = starts_[r] + left_sizes_[r];
  return std::string_view(chars_).substr(begin, starts_[r + 1] - begin);
}

// The slot holding the pair's rank, or the empty slot where it would go.
size_t MergeRanks::slot_of(std::string_view left, std::string_view right) const {
  const size_t mask = slots_.size() - 1;
  size_t i = hash(left, right) & mask;
  while (slots_[i] >= 0 && (left_of(slots_[i]) != left || right_of(slots_[i]) != right)) i = (i + 1) & mask;
  return i;
}

}  // namespace tiller
