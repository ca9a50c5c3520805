// Control vectors between the engine and NumPy: read, write, train.
#include <nanobind/stl/function.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "binding.h"

namespace tiller::python {

nb::dict directions_to_numpy(const ControlVector& vector) {
  nb::dict out;
  for (const auto& [block, values] : vector.directions) {
    FloatBuffer buffer(values.size());
    std::memcpy(buffer.data(), values.data(), values.size() * sizeof(float));
    out[nb::int_(block)] = buffer.to_numpy({values.size()});
  }
  return out;
}

ControlVector control_vector_from(const std::string& model_hint, const nb::dict& directions) {
  using Direction = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
  ControlVector vector;
  vector.model_hint = model_hint;
  for (const auto& [key, value] : directions) {
    const int block = nb::cast<int>(key);
    if (block < 0) throw Error("a control vector's blocks are numbered from 0, not " + std::to_string(block));
    Direction d;
    if (!nb::try_cast(value, d)) throw Error("direction " + std::to_string(block) + ": not a 1-D float32 array");
    const auto width = static_cast<int64_t>(d.shape(0));
    if (vector.n_embd == 0) vector.n_embd = width;
    if (width != vector.n_embd || width == 0) {
      throw Error("direction " + std::to_string(block) + " has width " + std::to_string(width) + ", the others " +
                  std::to_string(vector.n_embd));
    }
    vector.directions[block].assign(d.data(), d.data() + width);
  }
  return vector;
}

void bind_vectors(nb::module_& m) {
  m.def(
      "read_control_vector",
      [](const std::string& path) {
        const ControlVector vector = read_control_vector(path);
        return nb::make_tuple(vector.model_hint, directions_to_numpy(vector));
      },
      nb::arg("path"), "(model_hint, {block: float32 array}) from a llama.cpp control-vector GGUF.");
  m.def(
      "write_control_vector",
      [](const std::string& path, const std::string& model_hint, const nb::dict& directions) {
        write_control_vector(path, control_vector_from(model_hint, directions));
      },
      nb::arg("path"), nb::arg("model_hint"), nb::arg("directions"));
}

}  // namespace tiller::python
