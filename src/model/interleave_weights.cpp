#include "model/interleave_weights.h"

#include <vector>

#include "ops/block_layout.h"
#include "ops/q4_k_interleaved.h"

namespace tiller {

void interleave_q4_k_matrices(gguf::File& file, ModelWeights& weights) {
  if (file.residence() != gguf::Residence::Read || best_kernel_level() < KernelLevel::Avx512Vnni) return;
  std::vector<ops::WeightMatrix*> matrices{&weights.output};
  for (LayerWeights& layer : weights.layers) {
    for (ops::WeightMatrix* m : {&layer.attn_q, &layer.attn_k, &layer.attn_v, &layer.attn_output, &layer.ffn_gate,
                                 &layer.ffn_up, &layer.ffn_down}) {
      matrices.push_back(m);
    }
  }
  for (const gguf::TensorInfo& tensor : file.tensors()) {
    if (tensor.type != TensorType::Q4_K || tensor.name == "token_embd.weight" || tensor.shape.size() != 2) continue;
    const std::span<const uint8_t> bytes = file.tensor_data(tensor);
    auto inside = [&](const ops::WeightMatrix* m) {
      return m->type == TensorType::Q4_K && m->data >= bytes.data() && m->data < bytes.data() + bytes.size();
    };
    bool bound = false;
    for (const ops::WeightMatrix* m : matrices) bound = bound || inside(m);
    if (!bound) continue;
    file.rewrite_tensor(tensor, [](std::span<uint8_t> data) {
      ops::interleave_q4_k_blocks(data.data(), data.size() / ops::kQ4_KBytes);
    });
    for (ops::WeightMatrix* m : matrices) {
      if (inside(m)) m->layout = ops::WeightLayout::Q4_KInterleaved;
    }
  }
}

}  // namespace tiller
