// The extension module tiller._tiller: the engine's classes as the Python package
// (python/tiller/__init__.py) uses them. Errors of the engine become
// tiller.TillerError with the engine's one-line message.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "binding.h"

namespace tiller::python {

namespace {

constexpr size_t kMapAtLeast = size_t{1} << 20;

struct Memory {
  void* base;
  size_t bytes;
  bool mapped;
};

// The mapped regions of the last arrays freed, kept (at most two, 1 GiB in all)
// for the next call of the same size: `logits, cache = model.run_with_cache(text)`
// in a loop then writes into memory that is already there, instead of having the
// kernel zero fresh pages each time. Every float of a reused region is written
// before NumPy sees it.
class RegionPool {
 public:
  // A kept region of at least `bytes` and at most twice that, or {nullptr}.
  Memory take(size_t bytes) {
    std::lock_guard lock(mutex_);
    auto best = kept_.end();
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (it->bytes >= bytes && it->bytes <= 2 * bytes && (best == kept_.end() || it->bytes < best->bytes)) best = it;
    }
    if (best == kept_.end()) return {nullptr, 0, true};
    const Memory found = *best;
    kept_.erase(best);
    return found;
  }
  bool keep(const Memory& memory) {
    std::lock_guard lock(mutex_);
    size_t total = memory.bytes;
    for (const Memory& m : kept_) total += m.bytes;
    if (kept_.size() >= 2 || total > (size_t{1} << 30)) return false;
    kept_.push_back(memory);
    return true;
  }

 private:
  std::mutex mutex_;
  std::vector<Memory> kept_;
};

RegionPool& region_pool() {
  static RegionPool pool;
  return pool;
}

void release(const Memory& memory) noexcept {
  if (memory.mapped) {
    if (!region_pool().keep(memory)) munmap(memory.base, memory.bytes);
  } else {
    std::free(memory.base);
  }
}

size_t bytes_of(size_t count) { return std::max<size_t>(count, 1) * sizeof(float); }

}  // namespace

FloatBuffer::FloatBuffer(size_t count) : count_(count), bytes_(bytes_of(count)), mapped_(bytes_ >= kMapAtLeast) {
  void* p = nullptr;
  if (mapped_) {
    const Memory kept = region_pool().take(bytes_);
    if (kept.base != nullptr) {
      p = kept.base;
      bytes_ = kept.bytes;
    } else {
      p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (p == MAP_FAILED) p = nullptr;
    }
  } else {
    p = std::malloc(bytes_);
  }
  if (p == nullptr) throw std::bad_alloc();
  data_ = static_cast<float*>(p);
}

FloatBuffer::~FloatBuffer() {
  if (!owner_.is_valid()) release({data_, bytes_, mapped_});
}

nb::object FloatBuffer::to_numpy(std::initializer_list<size_t> shape, size_t offset) {
  if (!owner_.is_valid()) {
    owner_ = nb::capsule(new Memory{data_, bytes_, mapped_}, [](void* p) noexcept {
      release(*static_cast<Memory*>(p));
      delete static_cast<Memory*>(p);
    });
  }
  return nb::ndarray<nb::numpy, float>(data_ + offset, shape.size(), shape.begin(), owner_).cast();
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
