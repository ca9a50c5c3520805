// tiller._tiller.Steering: a steering spec (JSON) and the control vectors Python
// passed as objects, compiled once per model.
#include <nanobind/stl/map.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>

#include "binding.h"

namespace tiller::python {

PySteering::PySteering(const std::string& json, std::map<std::string, std::shared_ptr<const ControlVector>> held)
    : spec_(SteeringSpec::from_json(json)), held_(std::move(held)) {}

std::shared_ptr<const Steering> PySteering::compiled_for(const std::shared_ptr<const Model>& model,
                                                         const std::shared_ptr<Engine>& engine) {
  std::lock_guard lock(mutex_);
  for (const auto& [key, steering] : compiled_) {
    if (key.lock() == model) return steering;
  }
  std::erase_if(compiled_, [](const auto& entry) { return entry.first.expired(); });
  CompileOptions options;
  options.engine = engine;
  options.lookup_name = [this](std::string_view name) -> std::shared_ptr<const ControlVector> {
    const auto it = held_.find(std::string(name));
    return it == held_.end() ? nullptr : it->second;
  };
  auto steering = compile_steering(spec_, model, options);
  compiled_.emplace_back(model, steering);
  return steering;
}

void bind_steering(nb::module_& m) {
  nb::class_<PySteering>(m, "Steering")
      .def(
          "__init__",
          [](PySteering* self, const std::string& json, const nb::dict& vectors) {
            std::map<std::string, std::shared_ptr<const ControlVector>> held;
            for (const auto& [name, value] : vectors) {
              const auto pair = nb::cast<nb::tuple>(value);
              held.emplace(nb::cast<std::string>(name),
                           std::make_shared<const ControlVector>(
                               control_vector_from(nb::cast<std::string>(pair[0]), nb::cast<nb::dict>(pair[1]))));
            }
            new (self) PySteering(json, std::move(held));
          },
          nb::arg("json"), nb::arg("vectors"),
          "A steering spec as JSON; `vectors` maps the names it uses to (model_hint, directions).")
      .def("to_json", &PySteering::to_json)
      .def("empty", &PySteering::empty);
}

}  // namespace tiller::python
