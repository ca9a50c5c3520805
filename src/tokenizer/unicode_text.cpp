#include "tokenizer/unicode_text.h"

#include <array>
#include <unordered_map>

#include "tiller/tokenizer.h"

namespace tiller {

size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0xC0) return 1;  // ASCII, or a continuation byte standing alone
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

size_t incomplete_utf8_suffix(std::string_view text) {
  // Look back at most three bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    if (byte < 0xC0) return 0;
    return utf8_sequence_length(byte) > back ? back : 0;
  }
  return 0;
}

}  // namespace tiller

namespace tiller::unicode {

std::vector<uint32_t> decode_lenient(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto continuation = [&](size_t at) { return at < n && (bytes[at] & 0xC0) == 0x80; };
  while (i < n) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      out.push_back(lead);
      i += 1;
    } else if (lead < 0xC0) {
      out.push_back(kReplacement);
      i += 1;
    } else if (lead < 0xE0 && continuation(i + 1)) {
      out.push_back((uint32_t(lead & 0x1F) << 6) | (bytes[i + 1] & 0x3F));
      i += 2;
    } else if (lead >= 0xE0 && lead < 0xF0 && continuation(i + 1) && continuation(i + 2)) {
      out.push_back((uint32_t(lead & 0x0F) << 12) | (uint32_t(bytes[i + 1] & 0x3F) << 6) |
                    (bytes[i + 2] & 0x3F));
      i += 3;
    } else if (lead >= 0xF0 && lead < 0xF8 && continuation(i + 1) && continuation(i + 2) &&
               continuation(i + 3)) {
      out.push_back((uint32_t(lead & 0x07) << 18) | (uint32_t(bytes[i + 1] & 0x3F) << 12) |
                    (uint32_t(bytes[i + 2] & 0x3F) << 6) | (bytes[i + 3] & 0x3F));
      i += 4;
    } else {
      out.push_back(kReplacement);
      i += 1;
    }
  }
  return out;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp > 0x10FFFF) cp = kReplacement;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Printable bytes stand for themselves; the other 68 are moved to U+0100 onwards,
// in byte order, so that every byte has a visible, distinct character.
struct ByteAlphabet {
  std::array<std::string, 256> symbols;
  std::unordered_map<std::string, uint8_t> bytes;
  ByteAlphabet() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      append_utf8(printable ? static_cast<uint32_t>(b) : next++, symbols[b]);
      bytes.emplace(symbols[b], static_cast<uint8_t>(b));
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet instance;
  return instance;
}

}  // namespace

const std::string& byte_to_symbol(uint8_t byte) { return alphabet().symbols[byte]; }

bool symbol_to_byte(std::string_view symbol, uint8_t& byte) {
  const auto& map = alphabet().bytes;
  const auto it = map.find(std::string(symbol));
  if (it == map.end()) return false;
  byte = it->second;
  return true;
}

}  // namespace tiller::unicode
