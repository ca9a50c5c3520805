// ActAdd (Turner et al. 2023, arXiv 2308.10248): the difference of the residual
// stream before block L for a pair of prompts, one row per position, added to the
// first positions of the user's prompt.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tiller/model.h"
#include "tiller/steer.h"

namespace tiller {

struct ActAddPair {
  std::string positive, negative;
  int layer = 0;
};

// h+ - h- at blocks.L.hook_resid_pre, [n_rows x width], not yet scaled. Both
// prompts are tokenized as prompts (with BOS where the model adds one), the
// shorter padded on the right with the single-space token, so row 0 is the BOS
// row (zero) when there is one.
struct ActAddTensor {
  int layer = 0;
  int64_t n_rows = 0, width = 0;
  std::vector<float> rows;
  std::string positive, negative;  // for messages and files
};

// The prompts run on `engine` (its level and pool); the int form makes a private
// engine with n_threads threads and the best level.
ActAddTensor make_actadd_tensor(const std::shared_ptr<const Model>& model, const ActAddPair& pair,
                                const std::shared_ptr<Engine>& engine);
ActAddTensor make_actadd_tensor(const std::shared_ptr<const Model>& model, const ActAddPair& pair, int n_threads);

// Adds coefficient x tensor at blocks.L.hook_resid_pre, row i at position
// anchor + i of the prompt (PromptLayout; `align` picks the anchor): in the prompt's forward pass only,
// since those positions never run again. With every_step, each generated token
// also receives the tensor's last row (the pair's difference at its last token):
// an experiment, not the paper's method.
void add_actadd(Steering& steering, const ActAddTensor& tensor, float coefficient, FrontAlign align,
                bool every_step, const std::string& source);

// The ActAdd file layout of Tiller (GGUF): general.architecture = "tiller.actadd",
// actadd.layer (u32), actadd.hook_point ("hook_resid_pre"), actadd.positive and
// actadd.negative (the prompts), actadd.model_hint, and one F32 tensor
// "actadd.rows" of shape [width, n_rows] (row i = position i), unscaled.
void write_actadd_tensor(const std::string& path, const ActAddTensor& tensor, const std::string& model_hint);
ActAddTensor read_actadd_tensor(const std::string& path);

}  // namespace tiller
