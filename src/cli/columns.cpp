#include "cli/columns.h"

#include <algorithm>
#include <vector>

#include "tiller/tokenizer.h"

namespace tiller::cli {
namespace {

// Code points in a UTF-8 string: its width on a terminal, near enough for text.
size_t display_width(const std::string& text) {
  size_t width = 0;
  for (const unsigned char c : text) width += (c & 0xC0) != 0x80 ? 1 : 0;
  return width;
}

// The first `width` code points of `word`, as bytes.
size_t prefix_bytes(const std::string& word, size_t width) {
  size_t bytes = 0, seen = 0;
  while (bytes < word.size() && seen < width) {
    bytes += std::max<size_t>(1, utf8_sequence_length(static_cast<unsigned char>(word[bytes])));
    ++seen;
  }
  return std::min(bytes, word.size());
}

std::vector<std::string> wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string paragraph = text.substr(start, end - start);
    std::string line;
    size_t position = 0;
    while (position < paragraph.size()) {
      const size_t word_end = std::min(paragraph.find(' ', position), paragraph.size());
      std::string word = paragraph.substr(position, word_end - position);
      position = word_end + 1;
      while (display_width(word) > width) {  // a word longer than a line is cut
        if (!line.empty()) lines.push_back(std::move(line)), line.clear();
        const size_t cut = prefix_bytes(word, width);
        lines.push_back(word.substr(0, cut));
        word.erase(0, cut);
      }
      if (!line.empty() && display_width(line) + 1 + display_width(word) > width) {
        lines.push_back(std::move(line));
        line.clear();
      }
      if (!line.empty()) line += ' ';
      line += word;
    }
    lines.push_back(std::move(line));
    start = end + 1;
  }
  return lines;
}

}  // namespace

std::string side_by_side(const std::string& left, const std::string& right, size_t width) {
  width = std::max<size_t>(width, 8);
  const auto a = wrap(left, width), b = wrap(right, width);
  std::string out;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string l = i < a.size() ? a[i] : "";
    const std::string r = i < b.size() ? b[i] : "";
    out += l + std::string(width - std::min(width, display_width(l)), ' ') + " | " + r + "\n";
  }
  return out;
}

}  // namespace tiller::cli
