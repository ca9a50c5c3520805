// `tiller dump [-m MODEL] -p TEXT | -f FILE --hook NAME[,NAME..] -o DIR`: the
// residual stream at hook points, every position, as DIR/<hook name>.npy
// [n_tokens, n_embd]. NAME is blocks.L.hook_X, blocks.*.hook_X for every block, or all.
#include <fmt/format.h>

#include <optional>

#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "cli/npy.h"
#include "cli/options.h"
#include "cli/steering_options.h"
#include "common/fail.h"
#include "tiller/model.h"
#include "cli/models_dir.h"
#include "tiller/model_paths.h"

namespace tiller::cli {
namespace {

struct DumpOptions {
  std::string model{kDefaultModel};
  TextInput input;
  std::string out_dir;
  std::vector<std::string> hooks;
  int threads = 2;
  SteeringFlags steering;
};

void run(const DumpOptions& options) {
  const std::string text = options.input.read();
  const auto model = load_model(resolve_model(options.model));
  std::map<std::string, std::vector<float>> wanted;
  for (const std::string& request : options.hooks) {
    for (const HookLocation& at : parse_hook_request(request, model->config().n_layer)) {
      wanted[hook_name(at.layer, at.point)];
    }
  }
  const auto ids = model->tokenizer().tokenize(text, {true, false});
  if (ids.empty()) fail("the text has no tokens");
  const auto engine = make_engine(options.threads);
  Session session(model, engine, {.n_ctx = static_cast<int>(ids.size())});
  const auto steering = build_steering(options.steering, model, engine);
  // A plain text: the user's message starts the context. The dump sees the
  // stream after the interventions at each point.
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session, PromptLayout{0, static_cast<int>(ids.size()), 0});
  session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n_rows, int64_t width, int) {
    const auto it = wanted.find(hook_name(layer, point));
    if (it != wanted.end()) it->second.insert(it->second.end(), rows, rows + n_rows * width);
  });
  session.decode(ids, false);
  std::error_code error;
  std::filesystem::create_directories(options.out_dir, error);
  if (error) fail("{}: cannot create the folder: {}", options.out_dir, error.message());
  for (const auto& [name, values] : wanted) {
    write_npy((std::filesystem::path(options.out_dir) / (name + ".npy")).string(),
              {static_cast<int64_t>(ids.size()), model->config().n_embd}, values);
  }
  fmt::print("{} tokens, {} hook points written to {}\n", ids.size(), wanted.size(), options.out_dir);
}

}  // namespace

void register_dump(CLI::App& app) {
  auto options = std::make_shared<DumpOptions>();
  auto* command = app.add_subcommand("dump", "Write the residual stream at hook points to .npy files");
  add_model_option(command, options->model);
  options->input.add_to(command, "-p,--prompt", "The text");
  command->add_option("--hook", options->hooks, "blocks.L.hook_NAME, blocks.*.hook_NAME or all")
      ->delimiter(',')->required();
  command->add_option("-o,--out", options->out_dir, "Folder for the .npy files")->required();
  command->add_option("-t,--threads", options->threads, "Threads")->capture_default_str()->check(CLI::Range(1, 256));
  add_steering_options(command, options->steering);
  command->callback([options] { run(*options); });
}

}  // namespace tiller::cli
