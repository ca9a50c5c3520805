// evaluate(): each metric of an EvalSpec measured unsteered and steered on one
// session. Texts that are measured teacher-forced (likelihood, damage, A/B,
// fluency) run several to a packed pass (Session::decode_packed).
//
// Packing steered texts is exact: a binding's layout is one for the whole pass,
// while the hooks see each row's position within its own text. Every selector
// reads only that position and the layout, so a group of texts that share `begin`
// and `anchor` is steered as each text alone when the layout's `end` is the
// longest text's: every position of every text is then a prompt position (as
// alone, where end is the text's own length) and none is a generated one. Each
// text is still checked alone (Steering::check_prompt: ActAdd's tensor must fit it).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/fail.h"
#include "tiller/evaluate.h"
#include "tiller/generate.h"
#include "tiller/prompt.h"

namespace tiller {
namespace {

struct Sequence {
  std::vector<TokenId> tokens;
  PromptLayout layout;  // what a steering binding is given for this text alone
};

// Runs groups of sequences through one session, unsteered or steered.
class PackedRunner {
 public:
  PackedRunner(Session& session, std::shared_ptr<const Steering> steering, int pack_tokens)
      : session_(session), steering_(std::move(steering)), pack_tokens_(pack_tokens) {}

  // Consecutive sequences of at most pack_tokens tokens in all (a longer one
  // alone), sharing begin and anchor: [first, last) index ranges.
  std::vector<std::pair<size_t, size_t>> groups(const std::vector<Sequence>& sequences) const {
    std::vector<std::pair<size_t, size_t>> out;
    size_t first = 0, tokens = 0;
    for (size_t i = 0; i < sequences.size(); ++i) {
      const auto& s = sequences[i];
      const size_t n = s.tokens.size();
      const bool fits = tokens + n <= static_cast<size_t>(pack_tokens_) &&
                        s.layout.begin == sequences[first].layout.begin &&
                        s.layout.anchor == sequences[first].layout.anchor;
      if (i > first && !fits) {
        out.emplace_back(first, i);
        first = i;
        tokens = 0;
      }
      tokens += n;
    }
    if (first < sequences.size()) out.emplace_back(first, sequences.size());
    return out;
  }

  // The group's logits, steered or not: every row, or the last of each sequence.
  std::span<const float> run(const std::vector<Sequence>& sequences, std::pair<size_t, size_t> group, bool steered,
                             Session::PackedLogits which) {
    tokens_.clear();
    lengths_.clear();
    int longest = 0;
    for (size_t i = group.first; i < group.second; ++i) {
      const auto& t = sequences[i].tokens;
      tokens_.insert(tokens_.end(), t.begin(), t.end());
      lengths_.push_back(static_cast<int>(t.size()));
      longest = std::max(longest, static_cast<int>(t.size()));
    }
    std::optional<SteeringBinding> binding;
    if (steered) {
      PromptLayout layout = sequences[group.first].layout;
      layout.end = longest;  // exact for every text of the group: see the top of the file
      binding.emplace(steering_, session_, layout);
    }
    return session_.decode_packed(tokens_, lengths_, which);
  }

 private:
  Session& session_;
  std::shared_ptr<const Steering> steering_;
  int pack_tokens_;
  std::vector<TokenId> tokens_;
  std::vector<int> lengths_;
};

// Sum of log P(token t | tokens before t) for t from `from` on, from the sequence's logit rows.
double sum_logprobs(std::span<const float> rows, std::span<const TokenId> tokens, size_t from, size_t n_vocab) {
  double sum = 0;
  for (size_t t = std::max<size_t>(from, 1); t < tokens.size(); ++t) {
    sum += metrics::log_softmax_at(rows.subspan((t - 1) * n_vocab, n_vocab), tokens[t]);
  }
  return sum;
}

// The token of the answer letter: what the tokenizer makes of it alone, or else (a
// SentencePiece tokenizer that adds a space prefix spells "A" as "▁A") the first
// token whose text is the letter exactly, which is what follows "(".
TokenId letter_token(const Tokenizer& tokenizer, const std::string& letter, int64_t n_vocab) {
  const auto ids = tokenizer.tokenize(letter, {.add_special = false, .parse_special = false});
  if (ids.size() == 1) return ids[0];
  for (TokenId id = 0; id < n_vocab; ++id) {
    if (tokenizer.token_to_piece(id) == letter) return id;
  }
  fail("ab: the tokenizer has no single token for \"{}\"; the A/B measure needs one", letter);
}

std::string ab_user_text(const AbQuestion& q) {
  return fmt::format("{}\n\nChoices:\n(A) {}\n(B) {}", q.question, q.a, q.b);
}

class Evaluation {
 public:
  Evaluation(const EvalSpec& spec, const std::shared_ptr<const Model>& model, const std::shared_ptr<Engine>& engine,
             const std::shared_ptr<const Steering>& steering, const EvalProgress& progress, const EvalOptions& options)
      : spec_(spec), model_(model), steering_(steering), progress_(progress),
        n_vocab_(static_cast<size_t>(model->config().n_vocab)) {
    if (steering_ != nullptr) steering_->check_model(model->config(), "the model");
    build_sequences();
    const int longest = longest_sequence();
    int n_ctx = options.n_ctx;
    if (n_ctx <= 0) {
      n_ctx = std::max(longest, options.pack_tokens);
    } else if (longest > n_ctx) {
      fail("the longest text needs {} positions but the context holds {}; raise -c", longest, n_ctx);
    }
    session_.emplace(model, engine, SessionOptions{.n_ctx = n_ctx});
    runner_.emplace(*session_, steering_, std::min(options.pack_tokens, n_ctx));
    total_ = work_total();
  }

  EvalResult run() {
    EvalResult result;
    report();
    if (!on_topic_.empty()) result.on_topic = likelihood(on_topic_);
    if (!off_topic_.empty()) result.off_topic = likelihood(off_topic_);
    if (!neutral_.empty()) result.damage_kl = damage();
    if (!ab_.empty()) result.ab = ab();
    if (spec_.topic) {
      std::vector<Sequence> unsteered, steered;
      result.topic = topic(unsteered, steered);
      if (spec_.fluency) result.fluency = fluency(unsteered, steered);
    }
    return result;
  }

 private:
  bool steers() const { return steering_ != nullptr; }
  int sides() const { return steers() ? 2 : 1; }

  std::vector<Sequence> plain_texts(const std::vector<std::string>& texts, std::string_view what, size_t min_tokens) {
    std::vector<Sequence> out;
    for (size_t i = 0; i < texts.size(); ++i) {
      auto tokens = model_->tokenizer().tokenize(texts[i], {.add_special = true, .parse_special = false});
      if (tokens.size() < min_tokens) {
        fail("{} text {}: {} token{}, fewer than the {} it needs", what, i + 1, tokens.size(),
             tokens.size() == 1 ? "" : "s", min_tokens);
      }
      const PromptLayout layout{0, static_cast<int>(tokens.size()), 0};
      check_fits(layout, what, i);
      out.push_back({std::move(tokens), layout});
    }
    return out;
  }

  void check_fits(const PromptLayout& layout, std::string_view what, size_t i) const {
    if (!steers()) return;
    try {
      steering_->check_prompt(layout);
    } catch (const Error& e) {
      fail("{} text {}: {}", what, i + 1, e.what());
    }
  }

  void build_sequences() {
    // Likelihood needs a token after the first; the others one token.
    on_topic_ = plain_texts(spec_.on_topic, "likelihood.on_topic", 2);
    off_topic_ = plain_texts(spec_.off_topic, "likelihood.off_topic", 2);
    neutral_ = plain_texts(spec_.neutral, "damage", 1);
    if (!spec_.ab.empty()) {
      const Tokenizer& tokenizer = model_->tokenizer();
      letter_a_ = letter_token(tokenizer, "A", model_->config().n_vocab);
      letter_b_ = letter_token(tokenizer, "B", model_->config().n_vocab);
      PromptFormat format = PromptFormat::plain();
      if (spec_.ab_chat) {
        try {
          format = PromptFormat::chat_with(*model_, spec_.ab_chat_template);
        } catch (const Error& e) {
          fail("ab: {} (in the eval spec: \"chat_template\" in \"ab\")", e.what());
        }
      }
      for (size_t i = 0; i < spec_.ab.size(); ++i) {
        const std::string user = ab_user_text(spec_.ab[i]);
        const Prompt prompt = spec_.ab_chat ? build_prompt(*model_, format, {user, "("})
                                            : build_prompt(*model_, format, {user + "\nAnswer: (", ""});
        check_fits(prompt.layout(), "ab question", i);
        ab_.push_back({prompt.tokens, prompt.layout()});
      }
    }
    if (spec_.topic) {
      for (const std::string& text : spec_.topic->prompts) {
        const Prompt prompt = build_prompt(*model_, PromptFormat::plain(), {text, ""});
        if (prompt.tokens.empty()) fail("topic_words: a prompt has no tokens");
        topic_prompts_.push_back({prompt.tokens, prompt.layout()});
      }
    }
  }

  int longest_sequence() const {
    size_t longest = 0;
    for (const auto* list : {&on_topic_, &off_topic_, &neutral_, &ab_}) {
      for (const auto& s : *list) longest = std::max(longest, s.tokens.size());
    }
    // A prompt, its completion, and room for the token after it.
    for (const auto& s : topic_prompts_) {
      longest = std::max(longest, s.tokens.size() + static_cast<size_t>(spec_.topic->max_tokens) + 1);
    }
    return static_cast<int>(longest);
  }

  // Units of work: a text's pass on one side, a sample's generation on one side.
  size_t work_total() const {
    size_t total = (on_topic_.size() + off_topic_.size() + neutral_.size() + ab_.size()) * static_cast<size_t>(sides());
    if (spec_.topic) {
      const size_t samples = topic_prompts_.size() * static_cast<size_t>(spec_.topic->samples);
      total += samples * static_cast<size_t>(sides());
      if (spec_.fluency) total += samples * static_cast<size_t>(sides());
    }
    return total;
  }
  void advance(size_t units) {
    done_ += units;
    report();
  }
  void report() const {
    if (progress_) progress_(done_, total_);
  }

  EvalResult::Likelihood likelihood(const std::vector<Sequence>& texts) {
    EvalResult::Likelihood out;
    double sum_unsteered = 0, sum_steered = 0;
    for (const auto& group : runner_->groups(texts)) {
      const size_t count = group.second - group.first;
      for (const bool steered : {false, true}) {
        if (steered && !steers()) break;
        const auto logits = runner_->run(texts, group, steered, Session::PackedLogits::All);
        double& sum = steered ? sum_steered : sum_unsteered;
        size_t row = 0;
        for (size_t i = group.first; i < group.second; ++i) {
          const auto& tokens = texts[i].tokens;
          sum += sum_logprobs(logits.subspan(row * n_vocab_, tokens.size() * n_vocab_), tokens, 1, n_vocab_);
          row += tokens.size();
        }
        advance(count);
      }
    }
    for (const auto& s : texts) out.tokens += static_cast<int64_t>(s.tokens.size()) - 1;
    out.logprob_unsteered = sum_unsteered / static_cast<double>(out.tokens);
    out.logprob_steered = steers() ? sum_steered / static_cast<double>(out.tokens) : out.logprob_unsteered;
    out.delta = out.logprob_steered - out.logprob_unsteered;
    out.perplexity_ratio = std::exp(-out.delta);
    return out;
  }

  double damage() {
    if (!steers()) {
      advance(neutral_.size());
      return 0;
    }
    double sum = 0;
    int64_t positions = 0;
    std::vector<float> unsteered;
    for (const auto& group : runner_->groups(neutral_)) {
      const auto first = runner_->run(neutral_, group, false, Session::PackedLogits::All);
      unsteered.assign(first.begin(), first.end());
      advance(group.second - group.first);
      const auto steered = runner_->run(neutral_, group, true, Session::PackedLogits::All);
      const size_t rows = unsteered.size() / n_vocab_;
      for (size_t r = 0; r < rows; ++r) {
        sum += metrics::kl_divergence(std::span(unsteered).subspan(r * n_vocab_, n_vocab_),
                                      steered.subspan(r * n_vocab_, n_vocab_));
      }
      positions += static_cast<int64_t>(rows);
      advance(group.second - group.first);
    }
    return sum / static_cast<double>(positions);
  }

  EvalResult::Ab ab() {
    EvalResult::Ab out;
    double sum_unsteered = 0, sum_steered = 0;
    for (const auto& group : runner_->groups(ab_)) {
      for (const bool steered : {false, true}) {
        if (steered && !steers()) break;
        const auto last = runner_->run(ab_, group, steered, Session::PackedLogits::LastOfEach);
        double& sum = steered ? sum_steered : sum_unsteered;
        for (size_t i = group.first; i < group.second; ++i) {
          sum += metrics::ab_probability(last.subspan((i - group.first) * n_vocab_, n_vocab_), letter_a_, letter_b_,
                                         spec_.ab[i].matching);
        }
        advance(group.second - group.first);
      }
    }
    const auto n = static_cast<double>(ab_.size());
    out.p_unsteered = sum_unsteered / n;
    out.p_steered = steers() ? sum_steered / n : out.p_unsteered;
    return out;
  }

  // The samples, also kept as prompt + completion for fluency.
  EvalResult::Topic topic(std::vector<Sequence>& unsteered_seqs, std::vector<Sequence>& steered_seqs) {
    const EvalSpec::Topic& t = *spec_.topic;
    EvalResult::Topic out;
    metrics::WordCount unsteered_count, steered_count;
    auto keep = [](const Sequence& prompt, const GenerationResult& r, std::vector<std::string>& texts,
                   std::vector<Sequence>& seqs, metrics::WordCount& count, std::span<const std::string> words) {
      texts.push_back(r.text);
      Sequence s{prompt.tokens, prompt.layout};
      s.tokens.insert(s.tokens.end(), r.tokens.begin(), r.tokens.end());
      seqs.push_back(std::move(s));
      const auto c = metrics::count_topic_words(r.text, words);
      count.words += c.words;
      count.hits += c.hits;
    };
    for (const Sequence& prompt : topic_prompts_) {
      std::optional<SteeringBinding> binding;
      if (steers()) binding.emplace(steering_, prompt.layout);  // ActAdd's rule: the tensor fits the prompt
      for (int i = 0; i < t.samples; ++i) {
        GenerationOptions options;
        options.n_predict = t.max_tokens;
        options.sampling = t.sampling;
        options.sampling.seed = t.sampling.seed + static_cast<uint64_t>(i);
        if (steers()) {
          const auto both = generate_compared(*session_, *binding, prompt.tokens, options);
          keep(prompt, both.unsteered, out.samples_unsteered, unsteered_seqs, unsteered_count, t.words);
          keep(prompt, both.steered, out.samples_steered, steered_seqs, steered_count, t.words);
        } else {
          session_->reset();
          const auto alone = generate(*session_, prompt.tokens, options);
          keep(prompt, alone, out.samples_unsteered, unsteered_seqs, unsteered_count, t.words);
        }
        advance(static_cast<size_t>(sides()));
      }
    }
    session_->reset();
    if (!steers()) {
      out.samples_steered = out.samples_unsteered;
      steered_seqs = unsteered_seqs;
      steered_count = unsteered_count;
    }
    auto per100 = [](const metrics::WordCount& c) {
      return c.words > 0 ? 100.0 * static_cast<double>(c.hits) / static_cast<double>(c.words) : 0.0;
    };
    out.per100_unsteered = per100(unsteered_count);
    out.per100_steered = per100(steered_count);
    return out;
  }

  // Mean log-probability of the completions (after each prompt) under the unsteered model.
  std::pair<double, int64_t> completion_logprob(const std::vector<Sequence>& seqs) {
    double sum = 0;
    int64_t tokens = 0;
    for (const auto& group : runner_->groups(seqs)) {
      const auto logits = runner_->run(seqs, group, false, Session::PackedLogits::All);
      size_t row = 0;
      for (size_t i = group.first; i < group.second; ++i) {
        const auto& s = seqs[i];
        const auto n_prompt = static_cast<size_t>(s.layout.end);
        sum += sum_logprobs(logits.subspan(row * n_vocab_, s.tokens.size() * n_vocab_), s.tokens, n_prompt, n_vocab_);
        tokens += static_cast<int64_t>(s.tokens.size() - n_prompt);
        row += s.tokens.size();
      }
      advance(group.second - group.first);
    }
    return {tokens > 0 ? sum / static_cast<double>(tokens) : 0.0, tokens};
  }

  EvalResult::Fluency fluency(const std::vector<Sequence>& unsteered, const std::vector<Sequence>& steered) {
    EvalResult::Fluency out;
    std::tie(out.logprob_unsteered_samples, out.tokens_unsteered) = completion_logprob(unsteered);
    if (steers()) {
      std::tie(out.logprob_steered_samples, out.tokens_steered) = completion_logprob(steered);
    } else {
      out.logprob_steered_samples = out.logprob_unsteered_samples;
      out.tokens_steered = out.tokens_unsteered;
    }
    return out;
  }

  const EvalSpec& spec_;
  std::shared_ptr<const Model> model_;
  std::shared_ptr<const Steering> steering_;
  const EvalProgress& progress_;
  size_t n_vocab_;
  std::vector<Sequence> on_topic_, off_topic_, neutral_, ab_, topic_prompts_;
  TokenId letter_a_ = -1, letter_b_ = -1;
  std::optional<Session> session_;
  std::optional<PackedRunner> runner_;
  size_t done_ = 0, total_ = 0;
};

}  // namespace

EvalResult evaluate(const EvalSpec& spec, const std::shared_ptr<const Model>& model,
                    const std::shared_ptr<Engine>& engine, const std::shared_ptr<const Steering>& steering,
                    const EvalProgress& progress, const EvalOptions& options) {
  if (options.pack_tokens < 1) fail("evaluate: pack_tokens must be 1 or more");
  return Evaluation(spec, model, engine, steering, progress, options).run();
}

}  // namespace tiller
