#include "tiller/distill.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "tiller/printable.h"
#include "common/fail.h"

namespace tiller {
namespace {

std::vector<float> log_softmax(std::span<const float> logits) {
  float max = -INFINITY;
  for (const float x : logits) max = std::max(max, x);
  double sum = 0;
  for (const float x : logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_z = max + std::log(sum);
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(logits[i] - log_z);
  return out;
}

// KL(p || q) from p's log-probabilities and q's logits.
double kl_from_log_probs(std::span<const float> log_p, std::span<const float> q_logits) {
  float max = -INFINITY;
  for (const float x : q_logits) max = std::max(max, x);
  double sum = 0;
  for (const float x : q_logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_z = max + std::log(sum);
  double kl = 0;
  for (size_t i = 0; i < log_p.size(); ++i) {
    const double p = std::exp(static_cast<double>(log_p[i]));
    if (p > 0) kl += p * (log_p[i] - (q_logits[i] - log_z));
  }
  return std::max(kl, 0.0);
}

// One prompt's conversations, teacher-forced on the prompted model's greedy answer.
struct Forced {
  std::vector<TokenId> prompted, unprompted;  // each conversation + the answer but its last token
  size_t prompted_length = 0, unprompted_length = 0;  // the conversations alone
  int n_answer = 0;  // answer positions: rows length - 1 onwards
  std::vector<float> log_p;  // the prompted model's log-probabilities there [n_answer x n_vocab]
};

// A sequence of a packed pass: its tokens, the prompt it belongs to and (grid) its cell.
struct Work {
  const std::vector<TokenId>* tokens;
  size_t prompt;
  int tag;  // which conversation (0 prompted, 1 unprompted) or which cell; -1: none
};

class Distiller {
 public:
  Distiller(const std::shared_ptr<const Model>& model, const DistillOptions& options, size_t longest)
      : model_(model),
        options_(options),
        width_(model->config().n_embd),
        n_layer_(static_cast<int>(model->config().n_layer)),
        n_vocab_(model->config().n_vocab),
        session_(model,
                 options.engine ? options.engine
                                : Engine::create({.n_threads = options.n_threads, .kernels = std::nullopt}),
                 {.n_ctx = std::max(options.n_batch, static_cast<int>(longest)), .n_batch = options.n_batch}) {
    for (int layer = 0; layer < n_layer_; ++layer) {
      session_.add_hook(layer, HookPoint::ResidPost, [this](const HookRows& rows) { on_rows(rows); });
    }
  }

  // The prompted model's greedy answer of at most n_answer tokens (ending at an end of generation).
  std::vector<TokenId> greedy_answer(const std::vector<TokenId>& prompt) {
    mode_ = Mode::None;
    session_.reset();
    std::vector<TokenId> answer;
    std::span<const float> logits = session_.decode(prompt, false);
    while (true) {
      const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
      const auto token = static_cast<TokenId>(best);
      answer.push_back(token);
      if (static_cast<int>(answer.size()) >= options_.n_answer || model_->tokenizer().is_end_of_generation(token)) {
        break;
      }
      const TokenId next[] = {token};
      logits = session_.decode(next, false);
    }
    session_.reset();
    return answer;
  }

  // Runs `work` in packed passes; visit(work index, its rows' logits) after each.
  template <class Visit>
  void run(const std::vector<Work>& work, Visit visit) {
    std::vector<TokenId> tokens;
    std::vector<int> lengths;
    for (size_t first = 0; first < work.size();) {
      tokens.clear();
      lengths.clear();
      slot_work_.clear();
      size_t last = first;
      while (last < work.size()) {
        const size_t size = work[last].tokens->size();
        if (last > first && tokens.size() + size > static_cast<size_t>(options_.n_batch)) break;
        tokens.insert(tokens.end(), work[last].tokens->begin(), work[last].tokens->end());
        slot_work_.insert(slot_work_.end(), size, static_cast<int32_t>(last));
        lengths.push_back(static_cast<int>(size));
        ++last;
      }
      work_ = &work;
      const std::span<const float> logits = session_.decode_packed(tokens, lengths, Session::PackedLogits::All);
      size_t row = 0;
      for (size_t j = first; j < last; ++j) {
        const auto vocab = static_cast<size_t>(n_vocab_);
        visit(j, logits.subspan(row * vocab, work[j].tokens->size() * vocab));
        row += work[j].tokens->size();
      }
      done_ += last - first;
      tokens_ += tokens.size();
      if (options_.progress) options_.progress(done_, total_, tokens_);
      first = last;
    }
  }

  void set_total(size_t total) { total_ = total; }
  void count_done(size_t n, size_t tokens) {
    done_ += n;
    tokens_ += tokens;
    if (options_.progress) options_.progress(done_, total_, tokens_);
  }

  // Reading: the rows of conversation tag 0/1 of prompt i in [begin, end) are summed
  // into sums_[tag][layer] (sign applied later) with weight 1 / (end - begin).
  struct ReadWindow {
    int begin = 0, end = 0;
  };
  void start_reading(std::vector<std::array<ReadWindow, 2>> windows) {
    mode_ = Mode::Read;
    windows_ = std::move(windows);
    sums_.assign(static_cast<size_t>(n_layer_), std::vector<double>(static_cast<size_t>(width_), 0.0));
  }
  // The sum over prompts of (with - without), per block.
  const std::vector<std::vector<double>>& differences() const { return sums_; }

  void start_steering(const std::vector<DistillCell>* cells, const std::vector<float>* mean) {
    mode_ = Mode::Steer;
    cells_ = cells;
    mean_ = mean;
  }
  void stop() { mode_ = Mode::None; }

 private:
  enum class Mode { None, Read, Steer };

  void on_rows(const HookRows& rows) {
    if (mode_ == Mode::None) return;
    const size_t layer = static_cast<size_t>(rows.layer);
    for (int64_t r = 0; r < rows.n_rows; ++r) {
      const Work& w = (*work_)[static_cast<size_t>(slot_work_[static_cast<size_t>(rows.first_position + r)])];
      const int position = rows.position(r);
      float* h = rows.data + r * rows.width;
      if (mode_ == Mode::Read) {
        const ReadWindow window = windows_[w.prompt][static_cast<size_t>(w.tag)];
        if (position < window.begin || position >= window.end) continue;
        const double weight = (w.tag == 0 ? 1.0 : -1.0) / (window.end - window.begin);
        double* into = sums_[layer].data();
        for (int64_t i = 0; i < width_; ++i) into[i] += weight * h[i];
      } else {
        const DistillCell& cell = (*cells_)[static_cast<size_t>(w.tag)];
        if (rows.layer < cell.first || rows.layer > cell.last) continue;
        // The same float arithmetic as the written file under --control-vector at
        // coefficient 1: h += (float)(scale x v).
        const float* v = mean_->data() + layer * static_cast<size_t>(width_);
        for (int64_t i = 0; i < width_; ++i) h[i] += cell.scale * v[i];
      }
    }
  }

  std::shared_ptr<const Model> model_;
  const DistillOptions& options_;
  int64_t width_;
  int n_layer_;
  int64_t n_vocab_;
  Session session_;
  Mode mode_ = Mode::None;
  const std::vector<Work>* work_ = nullptr;
  std::vector<int32_t> slot_work_;
  std::vector<std::array<ReadWindow, 2>> windows_;
  std::vector<std::vector<double>> sums_;
  const std::vector<DistillCell>* cells_ = nullptr;
  const std::vector<float>* mean_ = nullptr;  // [n_layer x width]
  size_t done_ = 0, total_ = 0, tokens_ = 0;
};

void check_prompts(const std::vector<DistillPrompt>& prompts, const char* which) {
  for (size_t i = 0; i < prompts.size(); ++i) {
    const DistillPrompt& p = prompts[i];
    if (p.prompted.empty() || p.unprompted.empty()) fail("{} prompt {}: a conversation has no tokens", which, i + 1);
    if (p.header < 1 || static_cast<size_t>(p.header) > std::min(p.prompted.size(), p.unprompted.size())) {
      fail("{} prompt {}: the assistant header of {} tokens does not fit the conversation", which, i + 1, p.header);
    }
  }
}

Forced force(const DistillPrompt& prompt, const std::vector<TokenId>& answer) {
  Forced f;
  f.prompted_length = prompt.prompted.size();
  f.unprompted_length = prompt.unprompted.size();
  f.n_answer = static_cast<int>(answer.size());
  f.prompted = prompt.prompted;
  f.unprompted = prompt.unprompted;
  f.prompted.insert(f.prompted.end(), answer.begin(), answer.end() - 1);
  f.unprompted.insert(f.unprompted.end(), answer.begin(), answer.end() - 1);
  return f;
}

// The mean KL over a conversation's answer rows against the prompted log-probabilities.
double answer_kl(const Forced& f, size_t length, std::span<const float> logits, int64_t n_vocab) {
  double sum = 0;
  const auto vocab = static_cast<size_t>(n_vocab);
  for (int t = 0; t < f.n_answer; ++t) {
    const size_t row = length - 1 + static_cast<size_t>(t);
    sum += kl_from_log_probs(std::span<const float>(f.log_p).subspan(static_cast<size_t>(t) * vocab, vocab),
                             logits.subspan(row * vocab, vocab));
  }
  return sum / f.n_answer;
}

// How many tokens the two conversations end with alike (at least 1: the last, read alone when they differ there).
size_t common_suffix(const DistillPrompt& p) {
  size_t n = 0;
  while (n < p.prompted.size() && n < p.unprompted.size() &&
         p.prompted[p.prompted.size() - 1 - n] == p.unprompted[p.unprompted.size() - 1 - n]) {
    ++n;
  }
  return std::max<size_t>(n, 1);
}

}  // namespace

DistillRead parse_distill_read(std::string_view name) {
  if (name == "last") return DistillRead::Last;
  if (name == "header") return DistillRead::Header;
  if (name == "suffix") return DistillRead::Suffix;
  fail("--read '{}' is none of last, header, suffix", printable(name));
}

double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  if (p_logits.size() != q_logits.size() || p_logits.empty()) fail("KL of logit rows of different or no widths");
  return kl_from_log_probs(log_softmax(p_logits), q_logits);
}

DistillResult distill_system_prompt(const std::shared_ptr<const Model>& model, const std::vector<DistillPrompt>& train,
                                    const std::vector<DistillPrompt>& eval, const DistillOptions& options) {
  const ModelConfig& config = model->config();
  const int n_layer = static_cast<int>(config.n_layer);
  const int64_t width = config.n_embd;
  const int64_t n_vocab = config.n_vocab;
  if (train.empty()) fail("no training prompts");
  check_prompts(train, "training");
  check_prompts(eval, "held-out");
  if (options.n_answer < 1) fail("answer positions {} must be at least 1", options.n_answer);
  if (options.n_batch <= 0) fail("batch size {} must be positive", options.n_batch);
  if (options.scales.empty() || options.ranges.empty()) fail("the grid has no scales or no block ranges");
  for (const float scale : options.scales) {
    if (!std::isfinite(scale)) fail("scale {} is not finite", scale);
  }
  for (const auto& [first, last] : options.ranges) {
    if (first < 0 || last < first || last >= n_layer) {
      fail("block range {}-{} is not within blocks 0 to {}", first, last, n_layer - 1);
    }
  }

  std::vector<const DistillPrompt*> all;
  size_t longest = 0;
  for (const auto* set : {&train, &eval}) {
    for (const DistillPrompt& p : *set) {
      all.push_back(&p);
      longest = std::max({longest, p.prompted.size(), p.unprompted.size()});
    }
  }
  longest += static_cast<size_t>(options.n_answer);
  Distiller distiller(model, options, longest);
  std::vector<DistillCell> grid;
  for (const float scale : options.scales) {
    for (const auto& [first, last] : options.ranges) grid.push_back({scale, first, last, 0.0});
  }
  // Progress counts sequences: a greedy answer, two conversations per prompt, every
  // cell on the training prompts, the chosen one on the held-out ones.
  distiller.set_total(3 * all.size() + grid.size() * train.size() + eval.size());

  // 1. The prompted model's answers.
  std::vector<Forced> forced;
  for (const DistillPrompt* p : all) {
    forced.push_back(force(*p, distiller.greedy_answer(p->prompted)));
    distiller.count_done(1, p->prompted.size() + static_cast<size_t>(forced.back().n_answer) - 1);
  }

  // 2. Both conversations of every prompt: the prompted distributions, the
  // unsteered KL, and (training prompts) the stream read for the mean difference.
  std::vector<Work> work;
  std::vector<std::array<Distiller::ReadWindow, 2>> windows;
  for (size_t i = 0; i < all.size(); ++i) {
    work.push_back({&forced[i].prompted, i, 0});
    work.push_back({&forced[i].unprompted, i, 1});
    int header = 1;
    if (options.read == DistillRead::Header) header = all[i]->header;
    if (options.read == DistillRead::Suffix) header = static_cast<int>(common_suffix(*all[i]));
    const auto window = [header](size_t length) {
      return Distiller::ReadWindow{static_cast<int>(length) - header, static_cast<int>(length)};
    };
    // Held-out prompts are read nowhere: an empty window.
    windows.push_back(i < train.size()
                          ? std::array{window(forced[i].prompted_length), window(forced[i].unprompted_length)}
                          : std::array<Distiller::ReadWindow, 2>{});
  }
  distiller.start_reading(std::move(windows));
  std::vector<double> kl_unsteered(all.size());
  distiller.run(work, [&](size_t j, std::span<const float> logits) {
    Forced& f = forced[work[j].prompt];
    const auto vocab = static_cast<size_t>(n_vocab);
    if (work[j].tag == 0) {
      f.log_p.resize(static_cast<size_t>(f.n_answer) * vocab);
      for (int t = 0; t < f.n_answer; ++t) {
        const auto row = log_softmax(logits.subspan((f.prompted_length - 1 + static_cast<size_t>(t)) * vocab, vocab));
        const auto at = static_cast<std::ptrdiff_t>(static_cast<size_t>(t) * vocab);
        std::copy(row.begin(), row.end(), f.log_p.begin() + at);
      }
    } else {
      // The prompted sequence comes first in the same or an earlier pass.
      kl_unsteered[work[j].prompt] = answer_kl(f, f.unprompted_length, logits, n_vocab);
    }
  });
  distiller.stop();

  DistillResult result;
  result.mean_difference.model_hint = config.architecture;
  result.mean_difference.n_embd = width;
  std::vector<float> mean(static_cast<size_t>(n_layer * width));
  for (int layer = 0; layer < n_layer; ++layer) {
    std::vector<float>& out = result.mean_difference.directions[layer];
    out.resize(static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) {
      out[static_cast<size_t>(i)] =
          static_cast<float>(distiller.differences()[static_cast<size_t>(layer)][static_cast<size_t>(i)] /
                             static_cast<double>(train.size()));
      mean[static_cast<size_t>(layer * width + i)] = out[static_cast<size_t>(i)];
    }
  }

  // 3. The grid on the training prompts: every (cell, prompt) a sequence of its own.
  work.clear();
  for (size_t c = 0; c < grid.size(); ++c) {
    for (size_t i = 0; i < train.size(); ++i) work.push_back({&forced[i].unprompted, i, static_cast<int>(c)});
  }
  distiller.start_steering(&grid, &mean);
  distiller.run(work, [&](size_t j, std::span<const float> logits) {
    const Forced& f = forced[work[j].prompt];
    grid[static_cast<size_t>(work[j].tag)].kl +=
        answer_kl(f, f.unprompted_length, logits, n_vocab) / static_cast<double>(train.size());
  });
  for (size_t c = 1; c < grid.size(); ++c) {
    if (grid[c].kl < grid[result.chosen].kl) result.chosen = c;
  }
  const DistillCell& chosen = grid[result.chosen];

  // 4. The chosen cell on the held-out prompts.
  work.clear();
  std::vector<DistillCell> only{chosen};
  for (size_t i = train.size(); i < all.size(); ++i) work.push_back({&forced[i].unprompted, i, 0});
  std::vector<double> kl_steered(all.size());
  distiller.start_steering(&only, &mean);
  distiller.run(work, [&](size_t j, std::span<const float> logits) {
    const Forced& f = forced[work[j].prompt];
    kl_steered[work[j].prompt] = answer_kl(f, f.unprompted_length, logits, n_vocab);
  });
  distiller.stop();

  const auto figures = [&](size_t begin, size_t end, double steered) {
    DistillFigures out;
    out.prompts = end - begin;
    if (out.prompts == 0) return out;
    for (size_t i = begin; i < end; ++i) {
      out.kl_unsteered += kl_unsteered[i];
      out.kl_steered += kl_steered[i];
      out.tokens_saved +=
          static_cast<double>(forced[i].prompted_length) - static_cast<double>(forced[i].unprompted_length);
      out.positions += static_cast<size_t>(forced[i].n_answer);
    }
    const auto n = static_cast<double>(out.prompts);
    out.kl_unsteered /= n;
    out.kl_steered = steered >= 0 ? steered : out.kl_steered / n;
    out.tokens_saved /= n;
    return out;
  };
  result.train = figures(0, train.size(), chosen.kl);
  result.eval = figures(train.size(), all.size(), -1);
  result.grid = std::move(grid);

  result.vector.model_hint = config.architecture;
  result.vector.n_embd = width;
  for (int layer = result.grid[result.chosen].first; layer <= result.grid[result.chosen].last; ++layer) {
    std::vector<float>& out = result.vector.directions[layer];
    out.resize(static_cast<size_t>(width));
    for (int64_t i = 0; i < width; ++i) {
      out[static_cast<size_t>(i)] = result.grid[result.chosen].scale * mean[static_cast<size_t>(layer * width + i)];
    }
  }
  return result;
}

}  // namespace tiller
