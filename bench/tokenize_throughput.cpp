// tiller-bench-tokenize MODEL FILE [--reps N] [--per-line]: tokenizes FILE (no
// BOS, no special parsing) N times and prints one JSON object with the time of
// each repetition. The model is loaded once, outside the timed region.
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "tiller/error.h"
#include "tiller/gguf.h"
#include "cli/models_dir.h"
#include "tiller/tokenizer.h"

int main(int argc, char** argv) {
  try {
    if (argc < 3) {
      fmt::print(stderr, "usage: tiller-bench-tokenize MODEL FILE [--reps N] [--per-line]\n");
      return 2;
    }
    int reps = 5;
    bool per_line = false;
    for (int i = 3; i < argc; ++i) {
      if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
        reps = std::atoi(argv[++i]);
      } else if (std::strcmp(argv[i], "--per-line") == 0) {
        per_line = true;
      } else {
        fmt::print(stderr, "tiller-bench-tokenize: unknown argument {}\n", argv[i]);
        return 2;
      }
    }
    const auto file = tiller::gguf::File::open(tiller::resolve_model(argv[1]));
    const auto tokenizer = tiller::Tokenizer::from_gguf(file);
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) throw tiller::Error(fmt::format("{}: cannot open", argv[2]));
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<std::string_view> lines;
    for (size_t start = 0; start < text.size();) {
      const size_t end = std::min(text.find('\n', start), text.size());
      lines.emplace_back(text.data() + start, end - start);
      start = end + 1;
    }
    std::vector<double> seconds;
    size_t tokens = 0;
    for (int r = 0; r < reps; ++r) {
      const auto begin = std::chrono::steady_clock::now();
      tokens = 0;
      if (per_line) {
        for (const auto line : lines) tokens += tokenizer->tokenize(line, {false, false}).size();
      } else {
        tokens = tokenizer->tokenize(text, {false, false}).size();
      }
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count());
    }
    fmt::print("{{\"model\": \"{}\", \"bytes\": {}, \"tokens\": {}, \"per_line\": {}, \"seconds\": [{}]}}\n", argv[1],
               text.size(), tokens, per_line, fmt::join(seconds, ", "));
    return 0;
  } catch (const tiller::Error& error) {
    fmt::print(stderr, "tiller-bench-tokenize: error: {}\n", error.what());
    return 1;
  }
}
