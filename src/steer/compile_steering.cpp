// compile_steering: a SteeringSpec read, computed and checked for one model.
#include <fmt/format.h>

#include "tiller/printable.h"
#include "tiller/actadd.h"
#include "tiller/control_vector.h"
#include "common/fail.h"
#include "tiller/steering_spec.h"

namespace tiller {
namespace {

class Compiler {
 public:
  Compiler(const std::shared_ptr<const Model>& model, const CompileOptions& options)
      : model_(model), config_(model->config()), options_(options) {}

  std::string path_of(const VectorRef& ref) const {
    if (!ref.path.empty()) return ref.path;
    if (!options_.resolve_name) {
      fail("vector '{}' is given by name, which needs a vector folder (give a 'path' instead)", printable(ref.name));
    }
    return options_.resolve_name(ref.name);
  }

  // The vector held under that name, or null.
  std::shared_ptr<const ControlVector> held(const VectorRef& ref) const {
    if (ref.name.empty() || !options_.lookup_name) return nullptr;
    return options_.lookup_name(ref.name);
  }

  // How messages name the vector: its file, or its name when it is held in memory.
  std::string label_of(const VectorRef& ref) const {
    if (held(ref) != nullptr) return fmt::format("vector '{}'", printable(ref.name));
    return path_of(ref);
  }

  // The error names the file (or the held vector) and says why it does not fit this model.
  ControlVector control_vector(const VectorRef& ref) const {
    const auto in_memory = held(ref);
    const std::string file = in_memory != nullptr ? label_of(ref) : path_of(ref);
    ControlVector vector = in_memory != nullptr ? *in_memory : read_control_vector(file);
    if (vector.n_embd != config_.n_embd) {
      fail("{}: the vectors have width {} but the model's stream has width {} (made for another model?)", file,
           vector.n_embd, config_.n_embd);
    }
    if (vector.layer_count() > config_.n_layer) {
      fail("{}: direction.{} is beyond the model's last block {} (made for another model?)", file,
           vector.layer_count() - 1, config_.n_layer - 1);
    }
    return vector;
  }

  // The caller's engine, or one made once for this compilation.
  const std::shared_ptr<Engine>& engine() const {
    if (options_.engine != nullptr) return options_.engine;
    if (own_engine_ == nullptr) own_engine_ = Engine::create();
    return own_engine_;
  }

  ActAddTensor actadd_tensor(const ActAddSpec& a, std::string& source) const {
    if (!a.from_file()) {
      if (a.layer < 0 || a.layer >= config_.n_layer) {
        fail("ActAdd \"{}\" - \"{}\": block {} does not exist (the model has blocks 0 to {})", printable(a.positive),
             printable(a.negative), a.layer, config_.n_layer - 1);
      }
      source = fmt::format("ActAdd \"{}\" - \"{}\"", printable(a.positive), printable(a.negative));
      return make_actadd_tensor(model_, {a.positive, a.negative, a.layer}, engine());
    }
    const std::string file = path_of(a.file);
    source = file;
    ActAddTensor tensor = read_actadd_tensor(file);
    if (tensor.width != config_.n_embd) {
      fail("{}: the tensor has width {} but the model's stream has width {} (made for another model?)", file,
           tensor.width, config_.n_embd);
    }
    if (tensor.layer >= config_.n_layer) {
      fail("{}: block {} does not exist (the model has blocks 0 to {})", file, tensor.layer, config_.n_layer - 1);
    }
    return tensor;
  }

 private:
  const std::shared_ptr<const Model>& model_;
  const ModelConfig& config_;
  const CompileOptions& options_;
  mutable std::shared_ptr<Engine> own_engine_;
};

}  // namespace

std::shared_ptr<const Steering> compile_steering(const SteeringSpec& spec, const std::shared_ptr<const Model>& model,
                                                 const CompileOptions& options) {
  if (model == nullptr) fail("compile_steering needs a model");
  const ModelConfig& config = model->config();
  const Compiler compiler(model, options);
  auto steering = std::make_shared<Steering>(config.n_embd);
  if (spec.layer_range && spec.control_vectors.empty()) fail("a control-vector layer range needs a control vector");

  // Control vectors: each kept to its own blocks if it names them, summed, then the
  // sum restricted to the layer range, as llama.cpp does.
  if (!spec.control_vectors.empty()) {
    std::vector<ScaledControlVector> parts;
    for (const ScaledVectorRef& item : spec.control_vectors) {
      ControlVector vector = compiler.control_vector(item.vector);
      if (item.layer_range) {
        vector = restrict_layers(vector, (*item.layer_range)[0], (*item.layer_range)[1], config.n_layer);
      }
      parts.push_back({std::move(vector), item.value});
    }
    ControlVector sum = combine(parts);
    const auto [first, last] = spec.layer_range.value_or(std::array<int, 2>{0, 0});
    sum = restrict_layers(sum, first, last, config.n_layer);
    const std::string source =
        spec.control_vectors.size() == 1 ? compiler.label_of(spec.control_vectors.front().vector) : "control vectors";
    add_control_vector(*steering, sum, InterventionKind::Add, 1.0f, spec.positions, source);
  }
  for (const ActAddSpec& a : spec.actadd) {
    std::string source;
    const ActAddTensor tensor = compiler.actadd_tensor(a, source);
    add_actadd(*steering, tensor, a.coef, a.align, a.every_step, source);
  }
  for (const ScaledVectorRef& item : spec.ablate) {
    add_control_vector(*steering, compiler.control_vector(item.vector), InterventionKind::Ablate, item.value,
                       spec.positions, compiler.label_of(item.vector));
  }
  for (const ScaledVectorRef& item : spec.clamp) {
    add_control_vector(*steering, compiler.control_vector(item.vector), InterventionKind::Clamp, item.value,
                       spec.positions, compiler.label_of(item.vector));
  }
  return steering;
}

}  // namespace tiller
