// The working list both BPE kinds merge: the text's UTF-8 characters as a doubly
// linked list of byte ranges (a merged symbol grows, the absorbed one empties).
#pragma once

#include <algorithm>
#include <string_view>
#include <vector>

#include "tiller/tokenizer.h"

namespace tiller {

struct Symbol {
  size_t begin, length;  // bytes of the text
  int prev, next;        // neighbours in the list, -1 at the ends
};

// One symbol per character, as llama.cpp counts characters: by the lead byte's
// announced length, cut short at the end of the text.
inline std::vector<Symbol> characters_as_symbols(std::string_view text) {
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < text.size();) {
    const size_t length = std::min(utf8_sequence_length(static_cast<unsigned char>(text[offset])), text.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({offset, length, index - 1, offset + length == text.size() ? -1 : index + 1});
    offset += length;
  }
  return symbols;
}

// Merges `right` into `left`, its neighbour.
inline void merge_symbols(std::vector<Symbol>& symbols, int left_index, int right_index) {
  Symbol& left = symbols[static_cast<size_t>(left_index)];
  Symbol& right = symbols[static_cast<size_t>(right_index)];
  left.length += right.length;
  right.length = 0;
  left.next = right.next;
  if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = left_index;
}

}  // namespace tiller
