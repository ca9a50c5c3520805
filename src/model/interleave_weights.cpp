#include "model/interleave_weights.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "ops/block_layout.h"
#include "ops/interleaved_k_quants.h"

namespace tiller {
namespace {

// Interleaving rewrites every byte of the weights (an 8B's 4.9 GB: a fraction of a
// second to most of one on a core, next to 2 s of reading), so the machine's cores
// share each tensor.
void interleave_on_every_core(ops::WeightLayout layout, std::span<uint8_t> data, uint64_t block_bytes) {
  const uint64_t n_blocks = data.size() / block_bytes;
  const uint64_t parts = std::clamp<uint64_t>(std::thread::hardware_concurrency(), 1, 16);
  const auto part = [&](uint64_t p) {
    const uint64_t begin = n_blocks * p / parts, end = n_blocks * (p + 1) / parts;
    ops::interleave_blocks(layout, data.data() + begin * block_bytes, end - begin);
  };
  std::vector<std::jthread> helpers;
  for (uint64_t p = 1; p < parts; ++p) helpers.emplace_back(part, p);
  part(0);
}

}  // namespace

void interleave_k_quant_matrices(gguf::File& file, ModelWeights& weights) {
  if (file.residence() != gguf::Residence::Read || best_kernel_level() < KernelLevel::Avx512Vnni) return;
  // A tied embedding is the output matrix too: its rows are looked up through
  // weight_row, which reads either layout. One with an output of its own is only
  // looked up, and stays mapped (Model::load), so it is left alone.
  const bool tied = weights.output.data == weights.token_embd.data;
  std::vector<ops::WeightMatrix*> matrices{&weights.output};
  if (tied) matrices.push_back(&weights.token_embd);
  for (LayerWeights& layer : weights.layers) {
    for (ops::WeightMatrix* m : {&layer.attn_q, &layer.attn_k, &layer.attn_v, &layer.attn_output, &layer.ffn_gate,
                                 &layer.ffn_up, &layer.ffn_down}) {
      matrices.push_back(m);
    }
  }
  for (const gguf::TensorInfo& tensor : file.tensors()) {
    const ops::WeightLayout layout = ops::interleaved_layout(tensor.type);
    if (layout == ops::WeightLayout::Gguf || tensor.shape.size() != 2) continue;
    if (tensor.name == "token_embd.weight" && !tied) continue;
    const std::span<const uint8_t> bytes = file.tensor_data(tensor);
    auto inside = [&](const ops::WeightMatrix* m) {
      return m->type == tensor.type && m->data >= bytes.data() && m->data < bytes.data() + bytes.size();
    };
    bool bound = false;
    for (const ops::WeightMatrix* m : matrices) bound = bound || inside(m);
    if (!bound) continue;
    file.rewrite_tensor(tensor, [&](std::span<uint8_t> data) {
      interleave_on_every_core(layout, data, tensor_type_info(tensor.type).block_bytes);
    });
    for (ops::WeightMatrix* m : matrices) {
      if (inside(m)) m->layout = layout;
    }
  }
}

}  // namespace tiller
