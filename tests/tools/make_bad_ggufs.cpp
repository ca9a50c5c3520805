// make-bad-ggufs DIR: writes the broken-GGUF corpus (and two valid files) into DIR,
// as seeds for the fuzzer or to try `tiller inspect` on by hand.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "support/bad_gguf_corpus.h"
#include "support/tiny_model.h"

namespace {

void write(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make-bad-ggufs DIR\n");
    return 2;
  }
  using namespace tiller::testing;
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  int count = 0;
  for (const BadGguf& bad : bad_gguf_cases()) {
    write(dir / (bad.name + ".gguf"), bad.bytes);
    ++count;
  }
  // Truncations at the start, middle and end of every section of the reference file.
  const ReferenceLayout layout = reference_layout();
  for (uint64_t at : {uint64_t{0}, uint64_t{2}, uint64_t{10}, uint64_t{20}, layout.metadata_start + 5,
                      (layout.metadata_start + layout.tensor_infos_start) / 2, layout.tensor_infos_start + 3,
                      layout.data_start - 1, layout.data_start + 40, layout.data_end - 1}) {
    const BadGguf bad = truncated_reference(at);
    write(dir / (bad.name + ".gguf"), bad.bytes);
    ++count;
  }
  write(dir / "valid-reference.gguf", valid_reference_gguf());
  TinyModelSpec spec;
  spec.n_vocab = 40;
  spec.n_embd = 32;
  spec.n_ff = 64;
  spec.n_layer = 1;
  write(dir / "valid-tiny-model.gguf", make_tiny_model(spec).to_bytes());
  std::printf("wrote %d broken and 2 valid GGUF files to %s\n", count, dir.c_str());
  return 0;
}
