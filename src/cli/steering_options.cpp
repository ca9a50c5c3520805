#include "cli/steering_options.h"

namespace tiller::cli {

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

std::shared_ptr<const Steering> build_steering(const SteeringFlags& flags, const std::shared_ptr<const Model>& model,
                                               const std::shared_ptr<Engine>& engine) {
  const SteeringSpec spec = spec_from_flags(flags);
  if (spec.empty()) return nullptr;
  CompileOptions options;
  options.engine = engine;
  return compile_steering(spec, model, options);
}

}  // namespace tiller::cli
