#include "model/interleave_weights.h"

#include <vector>

#include "ops/block_layout.h"
#include "ops/interleaved_k_quants.h"

namespace tiller {

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
      ops::interleave_blocks(layout, data.data(), data.size() / tensor_type_info(tensor.type).block_bytes);
    });
    for (ops::WeightMatrix* m : matrices) {
      if (inside(m)) m->layout = layout;
    }
  }
}

}  // namespace tiller
