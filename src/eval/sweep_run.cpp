// run_sweep: the grid of tiller/sweep.h measured with work shared across cells.
// Likelihood and damage run here on captured residuals (one unsteered packed pass
// per batch of texts, then one packed pass from the row's first steered block per
// text and row, every coefficient a packed copy); the sampled metrics and A/B go
// through evaluate() per cell and half.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "common/fail.h"
#include "eval/packed_steering.h"
#include "tiller/sweep.h"

namespace tiller {
namespace {

// Rows per packed pass: enough for the matmuls to run at full width, few enough
// that its logits ([rows x n_vocab] floats) stay within 256 MB: 512 rows for
// SmolLM2's 49k tokens, 256 for Gemma 3's 262k.
constexpr int kPackRows = 512;
constexpr int64_t kLogitFloats = int64_t{1} << 26;
int pack_rows(int64_t n_vocab) {
  return static_cast<int>(std::clamp<int64_t>(kLogitFloats / std::max<int64_t>(n_vocab, 1), 64, kPackRows));
}

enum class TextKind { OnTopic, OffTopic, Neutral };

struct Text {
  TextKind kind;
  int half;
  std::vector<TokenId> tokens;
  size_t first_row = 0;      // in the captured residual, which holds every text one after another
  double unsteered_sum = 0;  // likelihood texts: the unsteered log-probabilities of tokens 1..n-1
};

// The figures of one column (coefficient) on one half, summed.
struct Sums {
  double on_u = 0, on_s = 0, off_u = 0, off_s = 0, kl = 0;
  int64_t on_tokens = 0, off_tokens = 0, kl_positions = 0;
};

EvalResult::Likelihood likelihood(double unsteered, double steered, int64_t tokens) {
  EvalResult::Likelihood l;
  l.tokens = tokens;
  if (tokens > 0) {
    l.logprob_unsteered = unsteered / static_cast<double>(tokens);
    l.logprob_steered = steered / static_cast<double>(tokens);
  }
  l.delta = l.logprob_steered - l.logprob_unsteered;
  l.perplexity_ratio = std::exp(-l.delta);
  return l;
}

// The spec restricted to one half of the sampled metrics and A/B questions (and none
// of the likelihood and damage texts, measured here): what evaluate() runs per cell.
std::optional<EvalSpec> sampled_half(const EvalSpec& spec, int half) {
  if (!spec.topic && spec.ab.empty()) return std::nullopt;
  EvalSpec part;
  part.ab_chat = spec.ab_chat;
  part.ab_chat_template = spec.ab_chat_template;
  part.fluency = spec.fluency;
  for (size_t i = static_cast<size_t>(half); i < spec.ab.size(); i += 2) part.ab.push_back(spec.ab[i]);
  if (spec.topic) {
    EvalSpec::Topic topic = *spec.topic;
    topic.prompts.clear();
    for (size_t i = static_cast<size_t>(half); i < spec.topic->prompts.size(); i += 2) {
      topic.prompts.push_back(spec.topic->prompts[i]);
    }
    if (!topic.prompts.empty()) part.topic = std::move(topic);
  }
  if (!part.topic) part.fluency = false;
  if (!part.topic && part.ab.empty()) return std::nullopt;
  return part;
}

class SweepRunner {
 public:
  SweepRunner(const SweepSpec& spec, std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine,
              const SweepRunOptions& options)
      : spec_(spec), model_(std::move(model)), engine_(std::move(engine)), options_(options) {
    n_ctx_ = options.n_ctx > 0 ? options.n_ctx : pack_rows(model_->config().n_vocab);
  }

  std::vector<SweepCell> run();

 private:
  void add_texts(const std::vector<std::string>& texts, TextKind kind);
  void capture(const std::set<int>& first_blocks);
  // Likelihood and damage of one row's columns, into sums[column][half].
  void measure_row(int first_layer, const std::vector<std::shared_ptr<const Steering>>& steerings,
                   std::vector<std::array<Sums, 2>>& sums);
  void tick() {
    ++work_done_;
    if (options_.progress) options_.progress(work_done_, work_total_);
  }

  const SweepSpec& spec_;
  std::shared_ptr<const Model> model_;
  std::shared_ptr<Engine> engine_;
  const SweepRunOptions& options_;
  std::vector<Text> texts_;
  size_t total_rows_ = 0;
  int n_ctx_ = kPackRows;
  std::map<int, std::vector<float>> captured_;  // first block -> every text's rows at its hook_resid_pre
  size_t work_done_ = 0, work_total_ = 0;
};

void SweepRunner::add_texts(const std::vector<std::string>& texts, TextKind kind) {
  for (size_t i = 0; i < texts.size(); ++i) {
    // Tokenized as evaluate() does: BOS where the model adds one, no special-token parsing.
    Text t{kind, static_cast<int>(i % 2),
           model_->tokenizer().tokenize(texts[i], {.add_special = true, .parse_special = false}), total_rows_, 0};
    if (t.tokens.empty()) continue;
    total_rows_ += t.tokens.size();
    n_ctx_ = std::max(n_ctx_, static_cast<int>(t.tokens.size()));
    texts_.push_back(std::move(t));
  }
}

// One unsteered packed pass per batch of texts: the stream at every first block
// wanted, and the unsteered log-probabilities of the likelihood texts.
void SweepRunner::capture(const std::set<int>& first_blocks) {
  const int64_t width = model_->config().n_embd, n_vocab = model_->config().n_vocab;
  for (const int block : first_blocks) captured_[block].assign(total_rows_ * static_cast<size_t>(width), 0.0f);
  Session session(model_, engine_, {.n_ctx = n_ctx_, .n_batch = std::min(n_ctx_, kPackRows)});
  size_t batch_row = 0;  // the batch's first row in the captured residual
  session.set_observer([&](int layer, HookPoint point, const float* rows, int64_t n, int64_t w, int first) {
    if (point != HookPoint::ResidPre) return;
    const auto it = captured_.find(layer);
    if (it == captured_.end()) return;
    // In a packed pass `first` is the cache slot of the chunk's first row: its row in the batch.
    std::copy_n(rows, n * w, it->second.begin() + static_cast<std::ptrdiff_t>((batch_row + first) * w));
  });
  for (size_t begin = 0; begin < texts_.size();) {
    size_t end = begin;
    size_t rows = 0;
    std::vector<TokenId> tokens;
    std::vector<int> lengths;
    while (end < texts_.size() && (end == begin || rows + texts_[end].tokens.size() <= static_cast<size_t>(n_ctx_))) {
      const auto& t = texts_[end++].tokens;
      tokens.insert(tokens.end(), t.begin(), t.end());
      lengths.push_back(static_cast<int>(t.size()));
      rows += t.size();
    }
    batch_row = texts_[begin].first_row;
    const auto logits = session.decode_packed(tokens, lengths, Session::PackedLogits::All);
    for (size_t i = begin; i < end; ++i) {
      Text& text = texts_[i];
      if (text.kind == TextKind::Neutral) continue;
      const size_t offset = text.first_row - batch_row;
      text.unsteered_sum = 0;
      for (size_t r = 0; r + 1 < text.tokens.size(); ++r) {
        text.unsteered_sum += metrics::log_softmax_at(
            logits.subspan((offset + r) * static_cast<size_t>(n_vocab), static_cast<size_t>(n_vocab)),
            text.tokens[r + 1]);
      }
    }
    for (size_t i = begin; i < end; ++i) tick();
    begin = end;
  }
}

void SweepRunner::measure_row(int first_layer, const std::vector<std::shared_ptr<const Steering>>& steerings,
                              std::vector<std::array<Sums, 2>>& sums) {
  const auto width = static_cast<size_t>(model_->config().n_embd);
  const auto n_vocab = static_cast<size_t>(model_->config().n_vocab);
  const std::vector<float>& residual = captured_.at(first_layer);
  Session session(model_, engine_, {.n_ctx = n_ctx_, .n_batch = std::min(n_ctx_, kPackRows)});
  // Copies of one text for some of the row's columns; a neutral text's group starts
  // with an unsteered copy, the reference of its KL (keeping every unsteered
  // distribution instead would cost n_vocab floats per position of every neutral text).
  struct Group {
    const Text* text;
    size_t first, count;  // columns first .. first + count - 1
    size_t first_seq;     // its first sequence in the pass
  };
  std::vector<Group> pass;
  std::vector<std::shared_ptr<const Steering>> copies;
  std::vector<PromptLayout> layouts;
  std::vector<int> lengths;
  std::vector<size_t> seq_rows;  // each sequence's first row in the pass
  std::vector<float> packed;
  size_t pass_rows = 0;
  auto flush = [&] {
    if (pass.empty()) return;
    std::optional<PackedSteering> steer;
    steer.emplace(session, copies, layouts);
    const auto logits = session.decode_packed_from(first_layer, packed, lengths, Session::PackedLogits::All);
    auto row_logits = [&](size_t seq, size_t r) { return logits.subspan((seq_rows[seq] + r) * n_vocab, n_vocab); };
    for (const Group& g : pass) {
      const Text& text = *g.text;
      const size_t n = text.tokens.size();
      const bool neutral = text.kind == TextKind::Neutral;
      for (size_t k = 0; k < g.count; ++k) {
        Sums& s = sums[g.first + k][static_cast<size_t>(text.half)];
        const size_t seq = g.first_seq + (neutral ? k + 1 : k);
        if (neutral) {
          // Every position of the text, its last (whose next token the text does not give) included, as evaluate() does.
          for (size_t r = 0; r < n; ++r) s.kl += metrics::kl_divergence(row_logits(g.first_seq, r), row_logits(seq, r));
          s.kl_positions += static_cast<int64_t>(n);
          continue;
        }
        double steered = 0;
        for (size_t r = 0; r + 1 < n; ++r) steered += metrics::log_softmax_at(row_logits(seq, r), text.tokens[r + 1]);
        if (text.kind == TextKind::OnTopic) {
          s.on_u += text.unsteered_sum, s.on_s += steered, s.on_tokens += static_cast<int64_t>(n - 1);
        } else {
          s.off_u += text.unsteered_sum, s.off_s += steered, s.off_tokens += static_cast<int64_t>(n - 1);
        }
      }
    }
    steer.reset();
    pass.clear(), copies.clear(), layouts.clear(), lengths.clear(), seq_rows.clear(), packed.clear();
    pass_rows = 0;
  };
  for (const Text& text : texts_) {
    const size_t n = text.tokens.size();
    const bool neutral = text.kind == TextKind::Neutral;
    const auto rows = std::span(residual).subspan(text.first_row * width, n * width);
    // As many copies as a pass holds (at least one steered, and the reference).
    const size_t per_pass = std::max<size_t>(neutral ? 2 : 1, static_cast<size_t>(n_ctx_) / n);
    const size_t steered_per_pass = neutral ? per_pass - 1 : per_pass;
    for (size_t first = 0; first < steerings.size(); first += steered_per_pass) {
      const size_t count = std::min(steered_per_pass, steerings.size() - first);
      const size_t group_rows = (count + (neutral ? 1 : 0)) * n;
      if (!pass.empty() && pass_rows + group_rows > static_cast<size_t>(n_ctx_)) flush();
      pass.push_back({&text, first, count, copies.size()});
      auto add_copy = [&](std::shared_ptr<const Steering> steering) {
        copies.push_back(std::move(steering));
        layouts.push_back({0, static_cast<int>(n), 0});  // a plain prompt that is the whole text
        lengths.push_back(static_cast<int>(n));
        seq_rows.push_back(pass_rows);
        packed.insert(packed.end(), rows.begin(), rows.end());
        pass_rows += n;
      };
      if (neutral) add_copy(nullptr);
      for (size_t k = 0; k < count; ++k) add_copy(steerings[first + k]);
    }
    tick();
  }
  flush();
}

std::vector<SweepCell> SweepRunner::run() {
  const EvalSpec& eval = spec_.eval;
  const size_t n_rows = spec_.rows(), n_columns = spec_.columns();
  std::vector<std::optional<SweepCell>> cells(spec_.cells());
  for (const SweepCell& cell : options_.done) {
    if (cell.row >= n_rows || cell.column >= n_columns) fail("a measured cell ({}, {}) is outside the grid", cell.row, cell.column);
    cells[cell.row * n_columns + cell.column] = cell;
  }
  // The rows with a cell left, and their steerings.
  std::vector<size_t> todo_rows;
  for (size_t row = 0; row < n_rows; ++row) {
    for (size_t column = 0; column < n_columns; ++column) {
      if (!cells[row * n_columns + column]) {
        todo_rows.push_back(row);
        break;
      }
    }
  }
  add_texts(eval.on_topic, TextKind::OnTopic);
  add_texts(eval.off_topic, TextKind::OffTopic);
  add_texts(eval.neutral, TextKind::Neutral);
  const std::array<std::optional<EvalSpec>, 2> sampled{sampled_half(eval, 0), sampled_half(eval, 1)};
  size_t todo_cells = 0;
  for (const auto& cell : cells) todo_cells += cell ? 0 : 1;
  work_total_ = (todo_rows.empty() ? 0 : texts_.size() * (1 + todo_rows.size())) +
                (sampled[0] || sampled[1] ? todo_cells : 0);

  CompileOptions compile{.engine = engine_, .lookup_name = {}, .resolve_name = {}};
  std::vector<std::vector<std::shared_ptr<const Steering>>> steerings;
  std::vector<int> first_layers;
  std::set<int> first_blocks;
  for (const size_t row : todo_rows) {
    auto& list = steerings.emplace_back();
    int first = static_cast<int>(model_->config().n_layer) - 1;
    for (size_t column = 0; column < n_columns; ++column) {
      list.push_back(compile_steering(spec_.cell_steering(row, column), model_, compile));
      for (const Intervention& v : list.back()->interventions()) first = std::min(first, v.layer);
    }
    first_layers.push_back(first);
    first_blocks.insert(first);
  }
  if (!texts_.empty() && !todo_rows.empty()) capture(first_blocks);

  size_t measured = 0;
  for (size_t i = 0; i < todo_rows.size(); ++i) {
    const size_t row = todo_rows[i];
    std::vector<std::array<Sums, 2>> sums(n_columns);
    if (!texts_.empty()) measure_row(first_layers[i], steerings[i], sums);
    for (size_t column = 0; column < n_columns; ++column) {
      if (cells[row * n_columns + column]) continue;
      SweepCell cell{row, column, spec_.cell_steering(row, column), {}};
      for (int half = 0; half < 2; ++half) {
        const Sums& s = sums[column][static_cast<size_t>(half)];
        EvalResult& r = cell.halves[static_cast<size_t>(half)];
        if (const auto& part = sampled[static_cast<size_t>(half)]) {
          r = evaluate(*part, model_, engine_, steerings[i][column]);
        }
        if (!eval.on_topic.empty()) r.on_topic = likelihood(s.on_u, s.on_s, s.on_tokens);
        if (!eval.off_topic.empty()) r.off_topic = likelihood(s.off_u, s.off_s, s.off_tokens);
        if (!eval.neutral.empty()) {
          r.damage_kl = s.kl_positions > 0 ? s.kl / static_cast<double>(s.kl_positions) : 0.0;
        }
      }
      if (sampled[0] || sampled[1]) tick();
      if (options_.on_cell) options_.on_cell(cell);
      cells[row * n_columns + column] = std::move(cell);
      ++measured;
      if (options_.stop_after > 0 && measured >= options_.stop_after) break;
    }
    if (options_.stop_after > 0 && measured >= options_.stop_after) break;
  }
  std::vector<SweepCell> out;
  for (auto& cell : cells) {
    if (cell) out.push_back(std::move(*cell));
  }
  return out;
}

}  // namespace

std::vector<SweepCell> run_sweep(const SweepSpec& spec, const std::shared_ptr<const Model>& model,
                                 const std::shared_ptr<Engine>& engine, const SweepRunOptions& options) {
  if (model == nullptr || engine == nullptr) fail("run_sweep needs a model and an engine");
  SweepRunner runner(spec, model, engine, options);
  return runner.run();
}

}  // namespace tiller
