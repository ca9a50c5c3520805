#include "cli/steering_options.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "tiller/printable.h"
#include "tiller/actadd.h"
#include "tiller/control_vector.h"
#include "common/fail.h"

namespace tiller::cli {
namespace {

template <typename T>
T per_pair(const std::vector<T>& values, size_t pair, size_t n_pairs, const char* flag, T fallback) {
  if (values.empty()) return fallback;
  if (values.size() == 1) return values.front();
  if (values.size() != n_pairs) fail("{} is given {} times for {} ActAdd pairs: give it once or once per pair", flag,
                                     values.size(), n_pairs);
  return values[pair];
}

// The file's error names the file and says why it does not fit this model.
ControlVector read_vector_for(const std::string& file, const ModelConfig& config) {
  ControlVector vector = read_control_vector(file);
  if (vector.n_embd != config.n_embd) {
    fail("{}: the vectors have width {} but the model's stream has width {} (made for another model?)", file,
         vector.n_embd, config.n_embd);
  }
  if (vector.layer_count() > config.n_layer) {
    fail("{}: direction.{} is beyond the model's last block {} (made for another model?)", file,
         vector.layer_count() - 1, config.n_layer - 1);
  }
  return vector;
}

}  // namespace

std::pair<std::string, float> file_and_number(const std::string& text, const char* flag, bool number_required,
                                              float fallback) {
  const auto colon = text.rfind(':');
  if (colon != std::string::npos) {
    const std::string number = text.substr(colon + 1);
    float value = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (error == std::errc() && end == number.data() + number.size() && std::isfinite(value)) {
      return {text.substr(0, colon), value};
    }
    if (number_required) fail("{} '{}': '{}' is not a number", flag, printable(text), printable(number));
  }
  if (number_required) fail("{} '{}' needs FILE:VALUE", flag, printable(text));
  return {text, fallback};
}

bool SteeringFlags::any() const {
  return !control_vectors.empty() || !control_vectors_scaled.empty() || has_actadd() || !ablate.empty() ||
         !clamp.empty();
}

void add_steering_options(CLI::App* command, SteeringFlags& flags) {
  const std::string group = "Steering";
  command->add_option("--control-vector", flags.control_vectors,
                      "Add a control vector (llama.cpp's GGUF) at every position, scale 1 (repeatable)")
      ->group(group);
  command->add_option("--control-vector-scaled", flags.control_vectors_scaled,
                      "FILE:SCALE[,FILE:SCALE..]: control vectors with scales; all files are summed")
      ->delimiter(',')->group(group);
  command->add_option("--control-vector-layer-range", flags.layer_range,
                      "START END: apply control vectors to these blocks only (inclusive; <= 0: first or last)")
      ->expected(2)->group(group);
  command->add_option("--actadd", flags.actadd, "POS NEG: an ActAdd prompt pair (repeatable)")
      ->expected(2)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->group(group);
  command->add_option("--actadd-layer", flags.actadd_layers, "Block L whose resid_pre ActAdd steers (once, or per pair)")
      ->group(group);
  command->add_option("--actadd-coef", flags.actadd_coefs, "ActAdd coefficient (once, or per pair; default 1)")
      ->group(group);
  command->add_option("--actadd-file", flags.actadd_files, "FILE[:COEF]: an ActAdd tensor from `tiller vector actadd`")
      ->group(group);
  command->add_option("--actadd-align", flags.actadd_align,
                      "context: row 0 at the start of the context (the paper's; default without --chat); "
                      "user: at the start of the user's message (default with --chat)")
      ->check(CLI::IsMember({"context", "user"}))->group(group);
  command->add_flag("--actadd-every-step", flags.actadd_every_step,
                    "Also add the ActAdd tensor's last row to every generated token (an experiment)")
      ->group(group);
  command->add_option("--ablate", flags.ablate, "FILE[:SCALE]: project each block's direction out of resid_post")
      ->group(group);
  command->add_option("--clamp", flags.clamp, "FILE:VALUE: fix the component along each block's direction")
      ->group(group);
  command->add_option("--steer-positions", flags.positions,
                      "Positions control vectors, --ablate and --clamp touch: all, prompt, generated, A:B, front:K")
      ->capture_default_str()->group(group);
}

std::unique_ptr<Steering> build_steering(const SteeringFlags& flags, const std::shared_ptr<const Model>& model,
                                         int n_threads) {
  const ModelConfig& config = model->config();
  if (!flags.has_actadd() && (!flags.actadd_layers.empty() || !flags.actadd_coefs.empty())) {
    fail("--actadd-layer and --actadd-coef need --actadd POS NEG");
  }
  if (!flags.layer_range.empty() && flags.control_vectors.empty() && flags.control_vectors_scaled.empty()) {
    fail("--control-vector-layer-range needs a control vector");
  }
  if (!flags.any()) return nullptr;
  auto steering = std::make_unique<Steering>(config.n_embd);
  const PositionSelector where = parse_position_selector(flags.positions);

  // Control vectors: summed first, then restricted to the layer range, as llama.cpp does.
  std::vector<ScaledControlVector> parts;
  std::vector<std::string> names;
  for (const std::string& file : flags.control_vectors) {
    parts.push_back({read_vector_for(file, config), 1.0f});
    names.push_back(file);
  }
  for (const std::string& item : flags.control_vectors_scaled) {
    const auto [file, scale] = file_and_number(item, "--control-vector-scaled", true);
    parts.push_back({read_vector_for(file, config), scale});
    names.push_back(file);
  }
  if (!parts.empty()) {
    ControlVector sum = combine(parts);
    const int first = flags.layer_range.empty() ? 0 : flags.layer_range[0];
    const int last = flags.layer_range.empty() ? 0 : flags.layer_range[1];
    sum = restrict_layers(sum, first, last, config.n_layer);
    add_control_vector(*steering, sum, InterventionKind::Add, 1.0f, where,
                       parts.size() == 1 ? names.front() : "control vectors");
  }

  // ActAdd pairs, computed on this model, and ActAdd files.
  if (flags.actadd.size() % 2 != 0) fail("--actadd needs two prompts: POS NEG");
  const size_t n_pairs = flags.actadd.size() / 2;
  for (size_t p = 0; p < n_pairs; ++p) {
    if (flags.actadd_layers.empty()) fail("--actadd needs --actadd-layer L (the block whose input it steers)");
    ActAddPair pair{flags.actadd[2 * p], flags.actadd[2 * p + 1],
                    per_pair(flags.actadd_layers, p, n_pairs, "--actadd-layer", 0)};
    const float coefficient = per_pair(flags.actadd_coefs, p, n_pairs, "--actadd-coef", 1.0f);
    const ActAddTensor tensor = make_actadd_tensor(model, pair, n_threads);
    add_actadd(*steering, tensor, coefficient, flags.actadd_every_step,
               fmt::format("--actadd \"{}\" \"{}\"", printable(pair.positive), printable(pair.negative)));
  }
  for (const std::string& item : flags.actadd_files) {
    const auto [file, coefficient] = file_and_number(item, "--actadd-file", false);
    const ActAddTensor tensor = read_actadd_tensor(file);
    if (tensor.width != config.n_embd) {
      fail("{}: the tensor has width {} but the model's stream has width {} (made for another model?)", file,
           tensor.width, config.n_embd);
    }
    if (tensor.layer >= config.n_layer) {
      fail("{}: block {} does not exist (the model has blocks 0 to {})", file, tensor.layer, config.n_layer - 1);
    }
    add_actadd(*steering, tensor, coefficient, flags.actadd_every_step, file);
  }

  for (const std::string& item : flags.ablate) {
    const auto [file, scale] = file_and_number(item, "--ablate", false);
    add_control_vector(*steering, read_vector_for(file, config), InterventionKind::Ablate, scale, where, file);
  }
  for (const std::string& item : flags.clamp) {
    const auto [file, value] = file_and_number(item, "--clamp", true);
    add_control_vector(*steering, read_vector_for(file, config), InterventionKind::Clamp, value, where, file);
  }
  return steering;
}

PromptLayout prompt_layout(const SteeringFlags& flags, const Model& model, int n_prompt, int user_start, bool chat) {
  const bool user = flags.actadd_align.empty() ? chat : flags.actadd_align == "user";
  int anchor = 0;
  if (user) {
    anchor = user_start - (model.tokenizer().adds_bos() ? 1 : 0);
    if (anchor < 0) anchor = 0;
  }
  return {0, n_prompt, anchor};
}

}  // namespace tiller::cli
