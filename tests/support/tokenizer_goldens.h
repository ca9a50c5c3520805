// The tokenizer corpus and llama.cpp's answers for it (scripts/make-tokenizer-goldens.py).
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/dequant_goldens.h"

namespace tiller::testing {

struct CorpusEntry {
  std::string name;
  std::string bytes;
};

inline std::vector<CorpusEntry> load_tokenizer_corpus() {
  const std::string path = std::string(TILLER_TEST_DATA) + "/tokenizer/corpus.jsonl";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing " + path);
  std::vector<CorpusEntry> corpus;
  std::string line;
  while (std::getline(in, line, '\n')) {  // only \n ends a line: entries hold U+2028 and U+0085
    if (line.empty()) continue;
    const auto entry = nlohmann::json::parse(line);
    CorpusEntry item{entry["name"], {}};
    if (entry.contains("hex")) {
      const auto bytes = from_hex(entry["hex"]);
      item.bytes.assign(bytes.begin(), bytes.end());
    } else {
      item.bytes = entry["text"].get<std::string>();
    }
    corpus.push_back(std::move(item));
  }
  return corpus;
}

inline nlohmann::json load_tokenizer_golden(const std::string& name) {
  const std::string path = std::string(TILLER_TEST_DATA) + "/tokenizer/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing golden " + path + "; run scripts/make-goldens.sh");
  return nlohmann::json::parse(in);
}

inline std::string hex_of(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (const char c : bytes) {
    hex += digits[(static_cast<unsigned char>(c) >> 4) & 15];
    hex += digits[static_cast<unsigned char>(c) & 15];
  }
  return hex;
}

}  // namespace tiller::testing
