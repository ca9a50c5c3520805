// The bad-input contract of every command (README: one line on stderr, a non-zero
// exit, no crash), as one expectation for the CLI tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/run_process.h"

namespace tiller::testing {

// Runs `command` and expects a non-zero exit, no signal and exactly one line on
// stderr; `case_args`, the arguments that make this case bad, name it in failure messages.
inline void expect_one_line_failure(const std::vector<std::string>& command, const std::vector<std::string>& case_args) {
  std::string shown;
  for (const auto& arg : case_args) shown += arg + " ";
  const ProcessResult result = run_process(command);
  EXPECT_NE(result.exit_code, 0) << shown;
  EXPECT_EQ(result.signal, 0) << shown;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << shown << "\n" << result.err;
}

}  // namespace tiller::testing
