#include <fmt/format.h>

#include "cli/commands.h"
#include "tiller/cpu_features.h"

namespace tiller::cli {

void register_version(CLI::App& app) {
  auto* command = app.add_subcommand("version", "Print Tiller's version and the CPU features it detected");
  command->callback([] {
    fmt::print("tiller {}\ncpu: {}\n", TILLER_VERSION, describe(cpu_features()));
  });
}

}  // namespace tiller::cli
