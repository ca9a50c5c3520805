// A control vector that stands in for a system prompt: the residual stream read
// with and without the system prompt over a set of user prompts, its mean
// difference per block, and the scale and blocks at which adding it (at every
// position of the conversation without the system prompt) brings the model's
// next-token distributions closest to the prompted model's (docs/distill.md).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "tiller/control_vector.h"
#include "tiller/model.h"

namespace tiller {

// One user prompt rendered twice, each ending with the assistant's turn opened.
struct DistillPrompt {
  std::vector<TokenId> prompted;    // with the system prompt
  std::vector<TokenId> unprompted;  // as the model would be asked without it
  int header = 1;  // the last `header` tokens of each open the assistant's turn (read with DistillRead::Header)
};

// Where the stream is read in each conversation.
enum class DistillRead {
  Last,    // the last prompt token, where the answer starts
  Header,  // the mean over the assistant header's tokens
  Suffix,  // the mean over the tokens both conversations end with (the user's turn and the header)
};
DistillRead parse_distill_read(std::string_view name);  // "last", "header", "suffix"

// One cell of the grid: the mean difference x scale added at blocks [first, last].
struct DistillCell {
  float scale = 1.0f;
  int first = 0, last = 0;
  double kl = 0;  // mean over the training prompts of the mean KL(prompted || steered) over answer positions
};

struct DistillOptions {
  std::vector<float> scales;
  std::vector<std::pair<int, int>> ranges;  // block ranges [first, last]
  int n_answer = 8;  // answer positions compared: the prompted model's greedy answer, teacher-forced
  DistillRead read = DistillRead::Last;
  int n_threads = 1;
  std::shared_ptr<Engine> engine;  // nullptr: a private one with n_threads threads
  int n_batch = 512;               // tokens per packed forward pass
  // After each pass: sequences done of the total the whole run needs, and tokens run so far.
  std::function<void(size_t done, size_t total, size_t tokens)> progress;
};

// Mean KL over prompts; per prompt, the mean over its answer positions.
struct DistillFigures {
  double kl_unsteered = 0;   // KL(prompted || the conversation without the system prompt)
  double kl_steered = 0;     // KL(prompted || that conversation steered by the chosen cell)
  double tokens_saved = 0;   // mean of prompted length - unprompted length
  size_t prompts = 0, positions = 0;
};

struct DistillResult {
  ControlVector mean_difference;  // every block, unscaled
  std::vector<DistillCell> grid;  // in the order scales x ranges (scale outer)
  size_t chosen = 0;              // the cell of least kl (the first of equals)
  ControlVector vector;           // the chosen cell: its blocks only, its scale baked in
  DistillFigures train, eval;
};

// KL(p || q) of the distributions two logit rows give, in double.
double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits);

// The whole method: greedy answers from the prompted conversations, the mean
// difference from the training prompts, the grid on them, the figures on both sets
// (eval may be empty). Throws tiller::Error for no training prompts, an empty
// conversation, a header longer than a conversation, an empty grid, a block the
// model lacks, a non-finite scale or n_answer < 1.
DistillResult distill_system_prompt(const std::shared_ptr<const Model>& model, const std::vector<DistillPrompt>& train,
                                    const std::vector<DistillPrompt>& eval, const DistillOptions& options);

}  // namespace tiller
