// A whole file's bytes, read-only, freed when the last owner goes: either mapped
// (pages come from the page cache as they are touched, shared between processes)
// or read into anonymous memory that the kernel may back with transparent huge
// pages (see gguf::Residence).
#pragma once

#include <cstdint>
#include <span>
#include <string>

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

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t reserved_ = 0;  // bytes of the mapping (read_into_memory rounds up to 2 MiB)
};

}  // namespace tiller::gguf
