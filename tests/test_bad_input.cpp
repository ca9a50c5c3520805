// Broken files: the reader answers each with one clear line, never a crash, and
// `tiller inspect` turns that into one line on stderr and a non-zero exit.
#include <gtest/gtest.h>

#include <algorithm>

#include "support/bad_gguf_corpus.h"
#include "support/run_process.h"
#include "support/test_files.h"
#include "common/fail.h"
#include "tiller/gguf.h"
#include "tiller/model_config.h"

namespace tiller {
namespace {

using testing::BadGguf;

// Parses and returns the error message, or fails the test when parsing succeeds.
std::string parse_error(const BadGguf& bad) {
  try {
    const auto file = gguf::File::parse(bad.bytes, bad.name + ".gguf");
    (void)read_model_config(file);
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << bad.name << " parsed without an error";
  return {};
}

void expect_one_clear_line(const BadGguf& bad, const std::string& message) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << bad.name << ": " << message;
  EXPECT_EQ(message.rfind(bad.name + ".gguf: ", 0), 0u) << bad.name << ": the message must name the file: " << message;
  EXPECT_NE(message.find(bad.expected_error), std::string::npos)
      << bad.name << ": expected '" << bad.expected_error << "' in: " << message;
}

TEST(BadInput, EveryHandMadeCaseIsRejectedWithItsReason) {
  const auto cases = testing::bad_gguf_cases();
  ASSERT_GE(cases.size(), 40u);
  for (const BadGguf& bad : cases) expect_one_clear_line(bad, parse_error(bad));
}

TEST(BadInput, EveryTruncationBeforeTheLastTensorByteIsRejected) {
  const auto layout = testing::reference_layout();
  for (uint64_t length = 0; length < layout.data_end; ++length) {
    const BadGguf bad = testing::truncated_reference(length);
    expect_one_clear_line(bad, parse_error(bad));
  }
  // Past the last tensor byte only padding is missing: the file is whole.
  auto bytes = testing::valid_reference_gguf();
  bytes.resize(layout.data_end);
  EXPECT_NO_THROW(gguf::File::parse(bytes, "trimmed"));
}

TEST(BadInput, EverySingleByteCorruptionParsesOrFailsCleanly) {
  const auto original = testing::valid_reference_gguf();
  size_t rejected = 0, accepted = 0;
  for (size_t at = 0; at < original.size(); ++at) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0xff}, static_cast<uint8_t>(original[at] + 1),
                          static_cast<uint8_t>(original[at] ^ 0x80)}) {
      auto bytes = original;
      bytes[at] = value;
      try {
        const auto file = gguf::File::parse(bytes, "corrupt");
        (void)read_model_config(file);
        ++accepted;
      } catch (const Error& error) {
        EXPECT_EQ(std::string(error.what()).find('\n'), std::string::npos);
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(accepted, 0u);  // changes inside tensor data or values are legal
}

// What a user sees: one line on stderr, status 1, nothing on stdout.
void expect_cli_rejects(const std::string& path, const std::string& fragment) {
  const auto result = testing::run_process({TILLER_BINARY, "inspect", path});
  EXPECT_EQ(result.signal, 0) << path << " killed tiller: " << result.err;
  EXPECT_EQ(result.exit_code, 1) << path;
  EXPECT_TRUE(result.out.empty()) << path << ": " << result.out;
  ASSERT_FALSE(result.err.empty()) << path;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_EQ(result.err.rfind("tiller: error: ", 0), 0u) << result.err;
  EXPECT_NE(result.err.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << result.err;
}

TEST(BadInput, InspectPrintsOneLineAndExitsNonZeroForEveryCase) {
  for (const BadGguf& bad : testing::bad_gguf_cases()) {
    const std::string path = testing::write_scratch(bad.name + ".gguf", bad.bytes);
    expect_cli_rejects(path, bad.expected_error);
  }
  const auto layout = testing::reference_layout();
  for (uint64_t length : {uint64_t{0}, uint64_t{3}, uint64_t{13}, layout.metadata_start + 9,
                          layout.tensor_infos_start - 1, layout.tensor_infos_start + 11,
                          layout.data_start - 1, layout.data_end - 1}) {
    const BadGguf bad = testing::truncated_reference(length);
    const std::string path = testing::write_scratch(bad.name + ".gguf", bad.bytes);
    expect_cli_rejects(path, length == 0 ? "empty" : bad.expected_error);
  }
}

TEST(BadInput, InspectExplainsMissingFilesAndModels) {
  expect_cli_rejects("/nonexistent/model.gguf", "no such file");
  expect_cli_rejects(testing::scratch_dir().string(), "not a regular file");
  expect_cli_rejects("no-such-model", "no model of that name");
}

TEST(BadInput, BadFlagsAreOneLineUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{TILLER_BINARY, "inspect", "--bogus"},
        std::vector<std::string>{TILLER_BINARY, "no-such-command"},
        std::vector<std::string>{TILLER_BINARY}}) {
    const auto result = testing::run_process(args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_EQ(result.err.rfind("tiller: error: ", 0), 0u) << result.err;
  }
}

}  // namespace
}  // namespace tiller
