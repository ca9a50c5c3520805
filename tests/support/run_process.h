// Runs a program and collects its exit status and output, for CLI tests.
#pragma once

#include <string>
#include <vector>

namespace tiller::testing {

struct ProcessResult {
  int exit_code = -1;    // the status passed to exit(), when it exited
  int signal = 0;        // the signal that killed it, or 0
  std::string out;
  std::string err;
};

// `input` is its standard input (empty: /dev/null).
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {});

}  // namespace tiller::testing
