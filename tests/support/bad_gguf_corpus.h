// The corpus of broken GGUF files: each case breaks one rule of the format and
// names a fragment the reader's one-line error must contain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tiller::testing {

struct BadGguf {
  std::string name;                // a file-name-safe label
  std::vector<uint8_t> bytes;
  std::string expected_error;      // a fragment of the reader's message
};

// A small valid file exercising every metadata type, nested arrays, padding and
// several tensors: the base that truncation cases cut.
std::vector<uint8_t> valid_reference_gguf();

// Where the reference file's sections start, to truncate inside each.
struct ReferenceLayout {
  uint64_t metadata_start;     // after the 24-byte header
  uint64_t tensor_infos_start;
  uint64_t data_start;
  uint64_t data_end;           // end of the last tensor's bytes; past it only padding
};
ReferenceLayout reference_layout();

// Hand-made cases, one broken rule each (truncations not included).
std::vector<BadGguf> bad_gguf_cases();

// The reference file cut at `length` bytes.
BadGguf truncated_reference(uint64_t length);

}  // namespace tiller::testing
