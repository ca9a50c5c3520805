// The extension module tiller._tiller: the engine's classes as the Python package
// (python/tiller/__init__.py) uses them. Errors of the engine become
// tiller.TillerError with the engine's one-line message.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <new>

#include "binding.h"

namespace tiller::python {

namespace {
float* allocate_floats(size_t count) {
  void* p = std::malloc(std::max<size_t>(count, 1) * sizeof(float));
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<float*>(p);
}
}  // namespace

FloatBuffer::FloatBuffer(size_t count) : data_(allocate_floats(count)), count_(count) {}

nb::object FloatBuffer::to_numpy(std::initializer_list<size_t> shape) {
  float* raw = data_.release();
  nb::capsule owner(raw, [](void* p) noexcept { std::free(p); });
  return nb::ndarray<nb::numpy, float>(raw, shape.size(), shape.begin(), owner).cast();
}

nb::str utf8_text(const std::string& bytes) {
  PyObject* text = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "replace");
  if (text == nullptr) throw nb::python_error();
  return nb::steal<nb::str>(text);
}

void raise_if_interrupted() {
  nb::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw nb::python_error();
}

}  // namespace tiller::python

NB_MODULE(_tiller, m) {
  using namespace tiller::python;
  m.doc() = "Tiller's engine (the tiller package wraps it; use that).";
  nb::exception<tiller::Error>(m, "TillerError", PyExc_RuntimeError);
  m.def("resolve_model_path",
        [](const std::string& name, const std::string& dir) { return tiller::resolve_model_path(name, dir); },
        nb::arg("name_or_path"), nb::arg("models_dir"),
        "A path to an existing file, or NAME / NAME.gguf in models_dir.");
  m.def("available_kernel_levels", [] {
    std::vector<std::string> names;
    for (const auto level : tiller::available_kernel_levels()) names.emplace_back(tiller::kernel_level_name(level));
    return names;
  }, "The kernel levels this CPU runs, lowest first.");
  bind_vectors(m);
  bind_steering(m);
  bind_model(m);
}
