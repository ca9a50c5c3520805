// The ranks of a byte-level BPE's merges, found by their two halves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tiller {

// Every merge's halves back to back in one string, and an open-addressing table of
// ranks over them (a power of two of slots, at most half full): about 14 bytes a
// merge plus 8 to 16 of slots, where a node-based map of std::string keys took 60
// or more (loading SmolLM2's tokenizer, 49k merges: peak heap 8.7 -> 6.7 MiB). A
// lookup hashes the two halves without joining them into a new string.
class MergeRanks {
 public:
  // merges[rank] is "left right", split at the first space after the first byte (a
  // half may itself be a space); a string with no such space can never match and is
  // left out. When a pair repeats, its first rank wins. Throws tiller::Error when a
  // left half is 64 KiB or longer.
  explicit MergeRanks(const std::vector<std::string>& merges);

  // The rank of merging left with right, or -1 when no merge joins them.
  int32_t find(std::string_view left, std::string_view right) const;

 private:
  static uint64_t hash(std::string_view left, std::string_view right);
  std::string_view left_of(int32_t rank) const;
  std::string_view right_of(int32_t rank) const;
  size_t slot_of(std::string_view left, std::string_view right) const;

  std::string chars_;              // merge r's halves: [starts_[r], starts_[r + 1])
  std::vector<uint32_t> starts_;   // merges + 1 of them
  std::vector<uint16_t> left_sizes_;
  std::vector<int32_t> slots_;     // ranks; -1 empty
};

}  // namespace tiller
