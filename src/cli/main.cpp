// `tiller`: one executable, one subcommand per job. Every failure ends here as
// one line on stderr and a non-zero exit status.
#include <fmt/format.h>

#include <cstdio>
#include <new>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/fail.h"

namespace {

// The message may quote text from a file; control characters are escaped so
// that an error is always exactly one line.
void print_error(const std::string& message) {
  std::string line;
  for (const char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      line += c == '\n' ? std::string("\\n") : fmt::format("\\x{:02x}", byte);
    } else {
      line += c;
    }
  }
  fmt::print(stderr, "tiller: error: {}\n", line);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Tiller: run language models from GGUF files, with activation steering", "tiller"};
  app.require_subcommand(1);
  tiller::cli::register_inspect(app);
  tiller::cli::register_tokenize(app);
  tiller::cli::register_template(app);
  tiller::cli::register_logits(app);
  tiller::cli::register_eval(app);
  tiller::cli::register_dump(app);
  tiller::cli::register_run(app);
  tiller::cli::register_vector(app);
  tiller::cli::register_sweep(app);
  tiller::cli::register_bench(app);
  tiller::cli::register_serve(app);
  tiller::cli::register_version(app);

  try {
    tiller::cli::kernels_from_environment();  // a bad TILLER_KERNELS is refused before any work starts
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    print_error(fmt::format("{} (see tiller --help)", error.what()));
    return 2;
  } catch (const tiller::Error& error) {
    print_error(error.what());
    return 1;
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return 1;
  } catch (const std::exception& error) {
    print_error(fmt::format("internal error: {}", error.what()));
    return 1;
  }
  return 0;
}
