// `tiller dump [-m MODEL] -p TEXT | -f FILE --hook NAME[,NAME..] -o DIR`: the
// residual stream at hook points, every position, as DIR/<hook name>.npy
// [n_tokens, n_embd]. NAME is blocks.L.hook_X, blocks.*.hook_X for every block, or all.
#include <fmt/format.h>

#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "cli/npy.h"
#include "cli/options.h"
#include "cli/steering_options.h"
#include "tiller/printable.h"
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

// The full names a request stands for, checked against the model's block count.
std::vector<std::string> expand(const std::string& request, int64_t n_layer) {
  std::vector<std::string> names;
  auto add_point = [&](std::string_view point_name, int64_t layer) {
    for (const HookPoint point : kHookPoints) {
      if (point_name == "*" || hook_point_name(point) == point_name) names.push_back(hook_name(int(layer), point));
    }
  };
  if (request == "all") {
    for (int64_t layer = 0; layer < n_layer; ++layer) add_point("*", layer);
    return names;
  }
  const auto first_dot = request.find('.'), second_dot = request.find('.', first_dot + 1);
  if (request.rfind("blocks.", 0) != 0 || second_dot == std::string::npos) {
    fail("hook '{}' is not blocks.L.hook_NAME, blocks.*.hook_NAME or all", printable(request));
  }
  const std::string layer_text = request.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string point = request.substr(second_dot + 1);
  const size_t before = names.size();
  if (layer_text == "*") {
    for (int64_t layer = 0; layer < n_layer; ++layer) add_point(point, layer);
  } else {
    int64_t layer = -1;
    try {
      layer = std::stoll(layer_text);
    } catch (const std::exception&) {
    }
    if (layer < 0 || layer >= n_layer || std::to_string(layer) != layer_text) {
      fail("hook '{}': block {} does not exist (the model has blocks 0 to {})", printable(request),
           printable(layer_text), n_layer - 1);
    }
    add_point(point, layer);
  }
  if (names.size() == before) {
    fail("hook '{}': unknown point '{}' (known: hook_resid_pre, hook_attn_out, hook_resid_mid, hook_mlp_out, "
         "hook_resid_post)", printable(request), printable(point));
  }
  return names;
}

void run(const DumpOptions& options) {
  const std::string text = options.input.read();
  const auto model = Model::load(resolve_model(options.model));
  std::map<std::string, std::vector<float>> wanted;
  for (const std::string& request : options.hooks) {
    for (const std::string& name : expand(request, model->config().n_layer)) wanted[name];
  }
  const auto ids = model->tokenizer().tokenize(text, {true, false});
  if (ids.empty()) fail("the text has no tokens");
  Session session(model, static_cast<int>(ids.size()), options.threads);
  const auto steering = build_steering(options.steering, model, options.threads);
  if (steering) {  // the dump sees the stream after the interventions at each point
    steering->set_prompt(prompt_layout(options.steering, *model, static_cast<int>(ids.size()), 0, false));
    steering->attach(session);
  }
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
