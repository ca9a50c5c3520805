// Code points the way llama.cpp reads UTF-8 (so that invalid input tokenizes
// the same way), the GPT-2 byte-to-character map, and UTF-8 encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tiller::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Decodes UTF-8 leniently: a byte that does not start a complete sequence
// becomes U+FFFD and decoding resumes at the next byte. Overlong forms and
// surrogates are decoded as written, as llama.cpp does.
std::vector<uint32_t> decode_lenient(std::string_view text);

// Appends the UTF-8 encoding of a code point (U+FFFD for values past U+10FFFF).
void append_utf8(uint32_t code_point, std::string& out);

// GPT-2's byte-level alphabet: each byte maps to one printable character.
const std::string& byte_to_symbol(uint8_t byte);
// The inverse; returns false when `symbol` is not one of the 256 characters.
bool symbol_to_byte(std::string_view symbol, uint8_t& byte);

}  // namespace tiller::unicode
