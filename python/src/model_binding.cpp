// tiller._tiller.Model: a loaded model, its tokenizer, and the passes Python asks
// for (logits, activations at hook points, Python hooks, generation, training).
// Every pass runs with the GIL released, from position 0 of the model's cached
// session, chunk by chunk (n_batch tokens) with a check for Ctrl-C in between.
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "binding.h"

namespace tiller::python {
namespace {

void check_ids(const std::vector<TokenId>& ids, const Session& session) {
  if (ids.empty()) throw Error("the text has no tokens");
  if (static_cast<int64_t>(ids.size()) > session.n_ctx()) {
    throw Error("the text has " + std::to_string(ids.size()) + " tokens but the context holds " +
                std::to_string(session.n_ctx()) + "; pass a larger n_ctx to tiller.Model");
  }
}

// Runs `ids` from position 0 with `steering` bound (a plain text: its layout starts
// the context, as `tiller logits` and `tiller dump` lay it out), n_batch tokens a
// pass; every row's logits go straight into `logits` ([n_tokens x n_vocab]).
// `after_steering` registers hooks that run after the steering's at the same point
// (a Python hook sees the steered stream, as run_with_cache shows it).
void run_text(Session& session, int n_batch, const std::vector<TokenId>& ids,
              const std::shared_ptr<const Steering>& steering,
              float* logits, const std::function<void()>& after_steering = {}) {
  session.reset();
  check_ids(ids, session);
  std::optional<SteeringBinding> binding;
  if (steering) binding.emplace(steering, session, PromptLayout{0, static_cast<int>(ids.size()), 0});
  if (after_steering) after_steering();
  const size_t n_vocab = static_cast<size_t>(session.model().config().n_vocab);
  for (size_t start = 0; start < ids.size(); start += static_cast<size_t>(n_batch)) {
    const size_t count = std::min(ids.size() - start, static_cast<size_t>(n_batch));
    session.decode_into(std::span(ids).subspan(start, count), std::span(logits + start * n_vocab, count * n_vocab));
    raise_if_interrupted();
  }
}

// Removes the hooks it registered on the way out, however the pass ends.
class HookGuard {
 public:
  explicit HookGuard(Session& session) : session_(session) {}
  HookGuard(const HookGuard&) = delete;
  HookGuard& operator=(const HookGuard&) = delete;
  ~HookGuard() {
    for (const HookHandle handle : handles_) session_.remove_hook(handle);
  }
  void add(int layer, HookPoint point, HookFunction hook) {
    handles_.push_back(session_.add_hook(layer, point, std::move(hook)));
  }

 private:
  Session& session_;
  std::vector<HookHandle> handles_;
};

class PyModel;

// One streamed generation on its own session, so that the model stays free for
// other calls while the stream is open.
class PyStream {
 public:
  PyStream(std::shared_ptr<ModelState> state, std::shared_ptr<const Steering> steering, Prompt prompt,
           const GenerationOptions& options)
      : seed_(options.sampling.seed),
        state_(std::move(state)),
        session_(state_->model, state_->engine, state_->options),
        generator_(session_, prompt.tokens, options) {
    if (steering) binding_.emplace(std::move(steering), session_, prompt.layout());
  }
  // The next piece of text ("" when a token printed nothing yet), or None at the end.
  std::optional<nb::str> next() {
    std::lock_guard lock(mutex_);
    std::optional<Generator::Step> step;
    {
      nb::gil_scoped_release release;
      step = generator_.next();
    }
    if (!step) return std::nullopt;
    return utf8_text(step->text);
  }
  void cancel() { generator_.cancel(); }
  nb::dict result() const;

 private:
  uint64_t seed_;
  std::shared_ptr<ModelState> state_;
  Session session_;
  std::optional<SteeringBinding> binding_;  // before generator_ runs, after session_ exists
  Generator generator_;
  std::mutex mutex_;
};

nb::dict result_dict(const GenerationResult& result, uint64_t seed) {
  nb::dict out;
  out["text"] = utf8_text(result.text);
  out["tokens"] = result.tokens;
  out["stop_reason"] = std::string(stop_reason_name(result.reason));
  out["n_prompt"] = result.n_prompt;
  out["prompt_seconds"] = result.prompt_seconds;
  out["generation_seconds"] = result.generation_seconds;
  out["seed"] = seed;
  return out;
}

nb::dict PyStream::result() const { return result_dict(generator_.result(), seed_); }

class PyModel {
 public:
  PyModel(const std::string& path, int n_ctx, int threads, std::optional<std::string> kernels, int n_batch, bool mmap)
      : state_(std::make_shared<ModelState>()) {
    if (threads < 1) throw Error("threads must be at least 1, not " + std::to_string(threads));
    if (n_batch < 1) throw Error("n_batch must be at least 1, not " + std::to_string(n_batch));
    if (n_ctx < 0) throw Error("n_ctx must not be negative");
    EngineOptions engine;
    engine.n_threads = threads;
    if (kernels && !kernels->empty()) engine.kernels = parse_kernel_level(*kernels);
    {
      nb::gil_scoped_release release;
      state_->model = Model::load(path, Model::LoadOptions{.mmap = mmap});
      state_->engine = Engine::create(engine);
    }
    const int context = n_ctx > 0 ? n_ctx : default_context_size(state_->model->config());
    state_->options = SessionOptions{.n_ctx = context, .n_threads = threads, .n_batch = n_batch};
  }

  const Model& model() const { return *state_->model; }

  nb::dict config() const {
    const ModelConfig& c = model().config();
    nb::dict d;
    d["architecture"] = c.architecture;
    d["family"] = std::string(model().family_name());
    d["name"] = c.name;
    d["n_layer"] = c.n_layer;
    d["n_embd"] = c.n_embd;
    d["n_head"] = c.n_head;
    d["n_head_kv"] = c.n_head_kv;
    d["head_dim"] = c.head_dim;
    d["n_ff"] = c.n_ff;
    d["n_vocab"] = c.n_vocab;
    d["n_ctx_train"] = c.n_ctx_train;
    d["n_ctx"] = state_->options.n_ctx;
    d["n_batch"] = state_->options.n_batch;
    d["threads"] = state_->engine->n_threads();
    d["kernels"] = std::string(kernel_level_name(state_->engine->kernel_level()));
    d["file"] = model().file().name();
    d["weights"] = model().file().residence() == gguf::Residence::Read ? "read" : "mapped";
    return d;
  }

  std::vector<TokenId> tokenize(const std::string& text, bool add_special, bool special) const {
    return model().tokenizer().tokenize(text, {add_special, special});
  }
  nb::str detokenize(const std::vector<TokenId>& ids, bool special) const {
    const auto n_vocab = model().config().n_vocab;
    for (const TokenId id : ids) {
      if (id < 0 || id >= n_vocab) {
        throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0 to " + std::to_string(n_vocab - 1) + ")");
      }
    }
    return utf8_text(model().tokenizer().detokenize(ids, special));
  }

  std::shared_ptr<const Steering> compiled(PySteering* steering) const {
    if (steering == nullptr || steering->empty()) return nullptr;
    return steering->compiled_for(state_->model, state_->engine);
  }

  nb::object logits(const std::vector<TokenId>& ids, PySteering* steering) {
    const size_t n_vocab = static_cast<size_t>(model().config().n_vocab);
    std::optional<FloatBuffer> out;
    {
      nb::gil_scoped_release release;
      out.emplace(ids.size() * n_vocab);
      SessionLease lease(*state_);
      const auto compiled_steering = compiled(steering);
      run_text(lease.session(), state_->options.n_batch, ids, compiled_steering, out->data());
    }
    return out->to_numpy({ids.size(), n_vocab});
  }

  nb::tuple run_with_cache(const std::vector<TokenId>& ids, const std::optional<std::vector<std::string>>& names,
                           PySteering* steering) {
    const ModelConfig& c = model().config();
    const size_t n_vocab = static_cast<size_t>(c.n_vocab), width = static_cast<size_t>(c.n_embd);
    // Every hook point asked for, in block order, with the array it fills.
    std::vector<std::string> order;
    std::map<std::pair<int, int>, size_t> slot;
    for (const std::string& request : names.value_or(std::vector<std::string>{"all"})) {
      for (const HookLocation& at : parse_hook_request(request, c.n_layer)) {
        const auto key = std::make_pair(at.layer, static_cast<int>(at.point));
        if (slot.emplace(key, order.size()).second) order.push_back(hook_name(at.layer, at.point));
      }
    }
    // One buffer for every array: its pages are populated at once (FloatBuffer).
    const size_t per_point = ids.size() * width;
    std::optional<FloatBuffer> cache, logits;
    {
      nb::gil_scoped_release release;
      cache.emplace(per_point * order.size());
      logits.emplace(ids.size() * n_vocab);
      SessionLease lease(*state_);
      Session& session = lease.session();
      const auto compiled_steering = compiled(steering);
      // The observer sees each point after its interventions, as `tiller dump` writes it;
      // rows go straight into the arrays NumPy will own.
      session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n_rows, int64_t, int first) {
        const auto it = slot.find({layer, static_cast<int>(point)});
        if (it == slot.end()) return;
        std::memcpy(cache->data() + it->second * per_point + static_cast<size_t>(first) * width, rows,
                    static_cast<size_t>(n_rows) * width * sizeof(float));
      });
      try {
        run_text(session, state_->options.n_batch, ids, compiled_steering, logits->data());
      } catch (...) {
        session.set_observer({});
        throw;
      }
      session.set_observer({});
    }
    nb::dict activations;
    for (size_t i = 0; i < order.size(); ++i) {
      activations[order[i].c_str()] = cache->to_numpy({ids.size(), width}, i * per_point);
    }
    return nb::make_tuple(logits->to_numpy({ids.size(), n_vocab}), activations);
  }

  nb::object run_with_hooks(const std::vector<TokenId>& ids, const std::vector<std::pair<std::string, nb::object>>& hooks,
                            PySteering* steering) {
    const ModelConfig& c = model().config();
    const size_t n_vocab = static_cast<size_t>(c.n_vocab);
    std::vector<std::pair<HookLocation, nb::handle>> wanted;
    for (const auto& [name, function] : hooks) {
      if (!PyCallable_Check(function.ptr())) throw Error("the hook for " + name + " is not callable");
      for (const HookLocation& at : parse_hook_request(name, c.n_layer)) wanted.emplace_back(at, function);
    }
    FloatBuffer out(ids.size() * n_vocab);
    {
      nb::gil_scoped_release release;
      SessionLease lease(*state_);
      Session& session = lease.session();
      const auto compiled_steering = compiled(steering);
      HookGuard guard(session);
      run_text(session, state_->options.n_batch, ids, compiled_steering, out.data(), [&] {
        for (const auto& [at, function] : wanted) {
          guard.add(at.layer, at.point, [function, state = state_](const HookRows& rows) {
            call_python_hook(function, rows, state);
          });
        }
      });
    }
    return out.to_numpy({ids.size(), n_vocab});
  }

  // The prompt format the arguments ask for; system and chat_template only with chat.
  PromptFormat format_for(bool chat, const std::string& system, const std::string& chat_template) const {
    if (!chat && (!system.empty() || !chat_template.empty())) throw Error("system and chat_template need chat=True");
    return chat ? PromptFormat::chat_with(model(), chat_template, system) : PromptFormat::plain();
  }

  Prompt prompt_for(const std::string& text, bool chat, const std::string& system, const std::string& chat_template) const {
    return build_prompt(model(), format_for(chat, system, chat_template), {text, ""});
  }

  nb::dict generate(const std::string& text, bool chat, const std::string& system, const std::string& chat_template,
                    const GenerationOptions& options, PySteering* steering) {
    const Prompt prompt = prompt_for(text, chat, system, chat_template);
    GenerationResult result;
    {
      nb::gil_scoped_release release;
      SessionLease lease(*state_);
      Session& session = lease.session();
      session.reset();
      const auto compiled_steering = compiled(steering);
      std::optional<SteeringBinding> binding;
      if (compiled_steering) binding.emplace(compiled_steering, session, prompt.layout());
      Generator generator(session, prompt.tokens, options);
      while (generator.next()) raise_if_interrupted();
      result = generator.result();
    }
    return result_dict(result, options.sampling.seed);
  }

  PyStream* stream(const std::string& text, bool chat, const std::string& system, const std::string& chat_template,
                   const GenerationOptions& options, PySteering* steering) {
    const Prompt prompt = prompt_for(text, chat, system, chat_template);
    std::shared_ptr<const Steering> compiled_steering;
    {
      nb::gil_scoped_release release;
      compiled_steering = compiled(steering);
    }
    return new PyStream(state_, compiled_steering, prompt, options);
  }

  nb::tuple train_vector(const std::vector<std::string>& positive, const std::vector<std::string>& negative,
                         const std::string& method, const std::vector<int>& layers, const std::string& read,
                         bool chat, const std::string& system, const std::string& chat_template,
                         const std::string& scale, const std::string& hook_point, int n_batch,
                         const std::optional<nb::object>& progress) {
    if (positive.size() != negative.size()) {
      throw Error("positive has " + std::to_string(positive.size()) + " prompts but negative has " +
                  std::to_string(negative.size()) + "; they are paired by position");
    }
    TrainOptions train;
    train.method = parse_train_method(method);
    train.scale = parse_train_scale(scale);
    train.point = parse_hook_point(hook_point);
    train.read = parse_read_token(read);
    train.engine = state_->engine;
    train.n_batch = n_batch;
    train.layers = layers.empty() ? parse_block_range("", model().config().n_layer, "layers") : layers;
    const PromptFormat format = format_for(chat, system, chat_template);
    std::vector<TextPair> texts;
    for (size_t i = 0; i < positive.size(); ++i) texts.push_back({{positive[i], ""}, {negative[i], ""}});
    const std::vector<TokenPair> pairs = tokenize_pairs(model(), format, texts, state_->options.n_ctx);
    nb::handle callback = progress ? progress->ptr() : nb::handle();
    train.progress = [callback](size_t pairs_done, size_t tokens_done) {
      if (callback.is_valid() && !callback.is_none()) {
        nb::gil_scoped_acquire gil;
        callback(pairs_done, tokens_done);
      }
      raise_if_interrupted();
    };
    TrainResult result;
    {
      nb::gil_scoped_release release;
      result = train_control_vector(state_->model, pairs, train);
    }
    nb::list stats;
    for (const TrainLayerStats& s : result.layers) {
      nb::dict d;
      d["block"] = s.layer;
      d["mean_gap"] = s.mean_gap;
      d["explained"] = s.explained;
      stats.append(d);
    }
    return nb::make_tuple(result.vector.model_hint, directions_to_numpy(result.vector), stats);
  }

  std::vector<std::string> hook_names() const {
    std::vector<std::string> names;
    for (const HookLocation& at : parse_hook_request("all", model().config().n_layer)) {
      names.push_back(hook_name(at.layer, at.point));
    }
    return names;
  }

 private:
  // Calls fn(view, positions) with the GIL: `view` is a writable NumPy view of the
  // pass's rows at this point (no copy); whatever the function leaves there, or an
  // array it returns, is what the pass continues from. The view keeps the model's
  // state alive, so one kept past the call reads stale rows, never freed memory.
  static void call_python_hook(nb::handle function, const HookRows& rows, const std::shared_ptr<ModelState>& state) {
    nb::gil_scoped_acquire gil;
    nb::capsule owner(new std::shared_ptr<ModelState>(state),
                      [](void* p) noexcept { delete static_cast<std::shared_ptr<ModelState>*>(p); });
    const size_t n_rows = static_cast<size_t>(rows.n_rows), width = static_cast<size_t>(rows.width);
    const size_t shape[2] = {n_rows, width};
    nb::object view = nb::ndarray<nb::numpy, float>(rows.data, 2, shape, owner).cast();
    std::vector<int64_t> positions_values(n_rows);
    for (size_t r = 0; r < n_rows; ++r) positions_values[r] = rows.position(static_cast<int64_t>(r));
    auto* positions_raw = new int64_t[n_rows];
    std::memcpy(positions_raw, positions_values.data(), n_rows * sizeof(int64_t));
    nb::capsule positions_owner(positions_raw, [](void* p) noexcept { delete[] static_cast<int64_t*>(p); });
    const size_t positions_shape[1] = {n_rows};
    nb::object positions = nb::ndarray<nb::numpy, int64_t>(positions_raw, 1, positions_shape, positions_owner).cast();
    nb::object returned = function(view, positions);
    if (returned.is_none() || returned.is(view)) return;
    using Rows = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
    Rows replacement;
    if (!nb::try_cast(returned, replacement) || replacement.shape(0) != n_rows || replacement.shape(1) != width) {
      throw Error("the hook at " + hook_name(rows.layer, rows.point) + " returned something that is not a float32 [" +
                  std::to_string(n_rows) + ", " + std::to_string(width) + "] array (return None to keep the edited view)");
    }
    std::memmove(rows.data, replacement.data(), n_rows * width * sizeof(float));
  }

  std::shared_ptr<ModelState> state_;
};

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<PyStream>(m, "Stream")
      .def("next", &PyStream::next, "The next piece of text, or None at the end.")
      .def("cancel", &PyStream::cancel)
      .def("result", &PyStream::result);

  // The library's GenerationOptions (its defaults), under the names Model.generate takes.
  nb::class_<GenerationOptions>(m, "SamplingArgs")
      .def(nb::init<>())
      .def_rw("max_tokens", &GenerationOptions::n_predict)
      .def_rw("stop", &GenerationOptions::stop)
      .def_rw("ignore_eos", &GenerationOptions::ignore_eos)
      .def_prop_rw("temperature", [](GenerationOptions& o) { return o.sampling.temperature; },
                   [](GenerationOptions& o, float v) { o.sampling.temperature = v; })
      .def_prop_rw("top_k", [](GenerationOptions& o) { return o.sampling.top_k; },
                   [](GenerationOptions& o, int32_t v) { o.sampling.top_k = v; })
      .def_prop_rw("top_p", [](GenerationOptions& o) { return o.sampling.top_p; },
                   [](GenerationOptions& o, float v) { o.sampling.top_p = v; })
      .def_prop_rw("min_p", [](GenerationOptions& o) { return o.sampling.min_p; },
                   [](GenerationOptions& o, float v) { o.sampling.min_p = v; })
      .def_prop_rw("repeat_penalty", [](GenerationOptions& o) { return o.sampling.repeat_penalty; },
                   [](GenerationOptions& o, float v) { o.sampling.repeat_penalty = v; })
      .def_prop_rw("repeat_last_n", [](GenerationOptions& o) { return o.sampling.penalty_last_n; },
                   [](GenerationOptions& o, int32_t v) { o.sampling.penalty_last_n = v; })
      .def_prop_rw("frequency_penalty", [](GenerationOptions& o) { return o.sampling.frequency_penalty; },
                   [](GenerationOptions& o, float v) { o.sampling.frequency_penalty = v; })
      .def_prop_rw("presence_penalty", [](GenerationOptions& o) { return o.sampling.presence_penalty; },
                   [](GenerationOptions& o, float v) { o.sampling.presence_penalty = v; })
      .def_prop_rw("seed", [](GenerationOptions& o) { return o.sampling.seed; },
                   [](GenerationOptions& o, uint64_t v) { o.sampling.seed = v; });

  nb::class_<PyModel>(m, "Model")
      .def(nb::init<const std::string&, int, int, std::optional<std::string>, int, bool>(), nb::arg("path"),
           nb::arg("n_ctx"), nb::arg("threads"), nb::arg("kernels").none(), nb::arg("n_batch"), nb::arg("mmap"))
      .def_prop_ro("config", &PyModel::config)
      .def("tokenize", &PyModel::tokenize, nb::arg("text"), nb::arg("add_special"), nb::arg("special"))
      .def("detokenize", &PyModel::detokenize, nb::arg("ids"), nb::arg("special"))
      .def("logits", &PyModel::logits, nb::arg("ids"), nb::arg("steering").none())
      .def("run_with_cache", &PyModel::run_with_cache, nb::arg("ids"), nb::arg("names").none(),
           nb::arg("steering").none())
      .def("run_with_hooks", &PyModel::run_with_hooks, nb::arg("ids"), nb::arg("hooks"), nb::arg("steering").none())
      .def("generate", &PyModel::generate, nb::arg("text"), nb::arg("chat"), nb::arg("system"),
           nb::arg("chat_template"), nb::arg("sampling"), nb::arg("steering").none())
      .def("stream", &PyModel::stream, nb::arg("text"), nb::arg("chat"), nb::arg("system"), nb::arg("chat_template"),
           nb::arg("sampling"), nb::arg("steering").none(), nb::rv_policy::take_ownership)
      .def("train_vector", &PyModel::train_vector, nb::arg("positive"), nb::arg("negative"), nb::arg("method"),
           nb::arg("layers"), nb::arg("read"), nb::arg("chat"), nb::arg("system"), nb::arg("chat_template"),
           nb::arg("scale"), nb::arg("hook_point"), nb::arg("n_batch"), nb::arg("progress").none())
      .def("hook_names", &PyModel::hook_names);
}

}  // namespace tiller::python
