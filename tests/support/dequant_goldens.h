// Reading the committed dequantization goldens and comparing against them.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tiller::testing {

inline nlohmann::json load_golden(const std::string& name) {
  const std::string path = std::string(TILLER_TEST_DATA) + "/dequant/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing golden " + path + "; run scripts/make-goldens.sh");
  return nlohmann::json::parse(in);
}

inline std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> bytes(hex.size() / 2);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return bytes;
}

// max over elements of |got - expected| / |expected|; exact zeros must match
// exactly, and a NaN anywhere counts as an infinite error.
inline double max_relative_error(const std::vector<float>& got, const std::vector<float>& expected) {
  if (got.size() != expected.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(expected[i])) return INFINITY;
    const double difference = std::fabs(static_cast<double>(got[i]) - expected[i]);
    if (difference == 0) continue;
    worst = std::max(worst, expected[i] == 0 ? INFINITY : difference / std::fabs(static_cast<double>(expected[i])));
  }
  return worst;
}

}  // namespace tiller::testing
