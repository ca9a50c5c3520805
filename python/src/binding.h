// What the Python extension's files share: NumPy arrays the engine fills without
// the GIL, the model's state that calls and hook views keep alive, and the
// steering object Python builds.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <atomic>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "tiller/tiller.h"

namespace tiller::python {

namespace nb = nanobind;

// Float memory filled by the engine with the GIL released, then handed to NumPy
// as the arrays' own memory (no copy). Several arrays may share one buffer (a
// run_with_cache dict): the memory goes with the last of them. A large buffer is
// mapped with its pages populated at once (writing 100 MB of fresh memory page by
// page costs some 25,000 page faults, about as much again as the writing), and
// its region is kept for the next call when the arrays are freed (module.cpp).
class FloatBuffer {
 public:
  explicit FloatBuffer(size_t count);
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  ~FloatBuffer();  // frees the memory if no array took it; needs the GIL if one did
  float* data() { return data_; }
  size_t size() const { return count_; }
  // Needs the GIL: a float32 array of `shape` over the floats from `offset` on.
  nb::object to_numpy(std::initializer_list<size_t> shape, size_t offset = 0);

 private:
  float* data_;
  size_t count_, bytes_;
  bool mapped_;
  nb::object owner_;  // the capsule that frees the memory, once an array exists
};

// Throws nb::python_error (KeyboardInterrupt) when Ctrl-C arrived: called between
// chunks and tokens, with the GIL released.
void raise_if_interrupted();

// Text the engine produced, which may end inside a UTF-8 sequence (a generation cut
// at its length, ids that split a character): invalid bytes become U+FFFD.
nb::str utf8_text(const std::string& bytes);

// tiller::ControlVector <-> (model_hint, {block: float32 array}).
nb::dict directions_to_numpy(const ControlVector& vector);
ControlVector control_vector_from(const std::string& model_hint, const nb::dict& directions);

// A steering as Python builds it: the library's spec plus the control vectors
// Python holds in memory (copied at construction), compiled once per model.
class PySteering {
 public:
  PySteering(const std::string& json, std::map<std::string, std::shared_ptr<const ControlVector>> held);
  std::string to_json() const { return spec_.to_json(); }
  bool empty() const { return spec_.empty(); }
  // Compiled for this model on this engine, once; thread-safe. Runs ActAdd pairs.
  std::shared_ptr<const Steering> compiled_for(const std::shared_ptr<const Model>& model,
                                               const std::shared_ptr<Engine>& engine);

 private:
  SteeringSpec spec_;
  std::map<std::string, std::shared_ptr<const ControlVector>> held_;
  std::mutex mutex_;
  std::vector<std::pair<std::weak_ptr<const Model>, std::shared_ptr<const Steering>>> compiled_;
};

// One loaded model: the engine it runs on and one cached session that calls take
// in turn. Shared by the Python Model, its streams and the NumPy views that hooks
// receive (so that a view kept past its call never points at freed memory).
struct ModelState {
  std::shared_ptr<const Model> model;
  std::shared_ptr<Engine> engine;
  SessionOptions options;
  std::mutex mutex;                  // held, with the GIL released, by the call using `session`
  std::atomic<std::thread::id> holder{};  // the thread holding `mutex`
  std::unique_ptr<Session> session;  // made on first use
};

// The model's cached session for one call. Take it with the GIL released (a Python
// hook inside the pass takes the GIL while the lease is held). A hook that calls
// back into the model it is hooked into would wait on itself: that is an error.
class SessionLease {
 public:
  explicit SessionLease(ModelState& state) : state_(state) {
    if (state.holder.load() == std::this_thread::get_id()) {
      throw Error("a hook cannot run the model whose pass it is in (use another tiller.Model, or a stream)");
    }
    state.mutex.lock();
    state.holder.store(std::this_thread::get_id());
  }
  SessionLease(const SessionLease&) = delete;
  SessionLease& operator=(const SessionLease&) = delete;
  ~SessionLease() {
    state_.holder.store(std::thread::id{});
    state_.mutex.unlock();
  }
  Session& session() {
    if (!state_.session) state_.session = std::make_unique<Session>(state_.model, state_.engine, state_.options);
    return *state_.session;
  }

 private:
  ModelState& state_;
};

void bind_model(nb::module_& m);
void bind_steering(nb::module_& m);
void bind_vectors(nb::module_& m);

}  // namespace tiller::python
