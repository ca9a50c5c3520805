// A whole file's bytes, read-only, freed when the last owner goes: either mapped
// (pages come from the page cache as they are touched, shared between processes)
// or read into anonymous memory that the kernel may back with transparent huge
// pages (see gguf::Residence).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace tiller::gguf {

class MappedFile {
 public:
  // Throws tiller::Error. read_into_memory: the whole file is read, except the
  // 4 KiB pages inside each of leave_mapped's [offset, offset + size) ranges, which
  // are mapped from the file in place (a token embedding that only has rows looked
  // up need not be resident).
  struct Range {
    uint64_t offset, size;
  };
  explicit MappedFile(const std::string& path, bool read_into_memory = false, std::span<const Range> leave_mapped = {});
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

  // Read into memory only: lets `edit` change bytes [offset, offset + size), which
  // must lie outside the ranges left mapped. Their pages are writable for the edit
  // and read-only again after it.
  void rewrite(uint64_t offset, uint64_t size, const std::function<void(std::span<uint8_t>)>& edit);

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t reserved_ = 0;  // bytes of the mapping (read_into_memory rounds up to 2 MiB)
  bool read_ = false;     // read into memory (else mapped)
  std::vector<Range> holes_;  // read: the pages left mapped from the file
};

}  // namespace tiller::gguf
