// The bad-input contract of every command (README: one line on stderr, a non-zero
// exit, no crash), as one expectation for the CLI tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/run_process.h"

namespace tiller::testing {

// Runs `argv` and expects a non-zero exit, no signal and exactly one line on stderr;
// `shown` names the case in failure messages.
inline void expect_one_line_failure(const std::vector<std::string>& argv, const std::string& shown) {
  const ProcessResult result = run_process(argv);
  EXPECT_NE(result.exit_code, 0) << shown;
  EXPECT_EQ(result.signal, 0) << shown;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << shown << "\n" << result.err;
}

}  // namespace tiller::testing
