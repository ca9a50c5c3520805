// The matrix-product driver: quantizes the activations once per format, picks the
// row or tiled kernels of the level, and splits the output rows across the pool.
#include "ops/matmul.h"

#include <algorithm>
#include <array>
#include <vector>

#include "ops/block_layout.h"
#include "ops/interleaved_k_quants.h"
#include "ops/tiled_matmul.h"
#include "ops/vnni_row_kernels.h"
#include "common/fail.h"

namespace tiller::ops {
namespace {

constexpr int64_t kRows = kRowKernelRows;

// The row kernels of a level: its own instruction set's where the type has them,
// else the level below's.
RowKernels row_kernels(TensorType type, KernelLevel level) {
  if (level >= KernelLevel::Avx512Vnni) {
    if (const RowKernels vnni = vnni_row_kernels(type); vnni.one != nullptr) return vnni;
  }
  if (level >= KernelLevel::Avx2) {
    if (const RowKernels avx2 = avx2_row_kernels(type); avx2.one != nullptr) return avx2;
  }
  return portable_row_kernels(type);
}

// Interleaved blocks below Avx512Vnni: each row put back in the GGUF layout, then
// the level's own kernel. Only tests and --kernels below the best level run it.
template <WeightLayout layout, KernelLevel L>
float deinterleaved_dot(const uint8_t* weights, const uint8_t* activations, int64_t n) {
  constexpr TensorType type = layout == WeightLayout::Q4_KInterleaved ? TensorType::Q4_K : TensorType::Q6_K;
  thread_local std::vector<uint8_t> row;
  const uint64_t n_blocks = static_cast<uint64_t>(n / kQK_K);
  row.resize(n_blocks * tensor_type_info(type).block_bytes);
  deinterleave_blocks(layout, weights, n_blocks, row.data());
  return row_kernels(type, L).one(row.data(), activations, n);
}

template <WeightLayout layout>
RowKernels deinterleaved_kernels(KernelLevel level) {
  switch (level) {
    case KernelLevel::Portable: return {deinterleaved_dot<layout, KernelLevel::Portable>};
    case KernelLevel::Avx2: return {deinterleaved_dot<layout, KernelLevel::Avx2>};
    default: return {deinterleaved_dot<layout, KernelLevel::Avx2Tiled>};
  }
}

RowKernels row_kernels(const WeightMatrix& w, KernelLevel level) {
  if (w.layout == WeightLayout::Gguf) return row_kernels(w.type, level);
  if (w.type != interleaved_type(w.layout)) {
    fail("matmul: {} is interleaved for another type than its {}", w.name, tensor_type_name(w.type));
  }
  if (level >= KernelLevel::Avx512Vnni) {
    if (const RowKernels vnni = vnni_interleaved_row_kernels(w.layout); vnni.one != nullptr) return vnni;
  }
  return w.layout == WeightLayout::Q4_KInterleaved ? deinterleaved_kernels<WeightLayout::Q4_KInterleaved>(level)
                                                   : deinterleaved_kernels<WeightLayout::Q6_KInterleaved>(level);
}

bool has_kernels(TensorType type) { return portable_row_kernels(type).one != nullptr; }

// The tiled kernel when it applies: from level Avx2Tiled, with enough rows; the
// best tiled level at or below `level` that has one for the type.
TiledKernel tiled_for(const WeightMatrix& w, int64_t n_rows, KernelLevel level) {
  if (n_rows < kTiledMinRows) return nullptr;
  for (const KernelLevel tiled : {KernelLevel::Avx512Vnni, KernelLevel::Avx2Tiled}) {
    if (level < tiled) continue;
    if (TiledKernel kernel = tiled_kernel(w.type, tiled, w.layout)) return kernel;
  }
  return nullptr;
}

struct MatmulJob {
  const WeightMatrix* w;
  const uint8_t* activations;
  uint64_t activation_row_bytes;
  int64_t n_rows;
  float* out;
  QuantizedDot dot;
  QuantizedRows rows;  // may be nullptr
  QuantizedRowsBy rows_by;  // may be nullptr
  TiledKernel tiled = nullptr;  // when set, all rows go through it
  const TiledActivations* tiled_x = nullptr;
  int64_t group = kRows;  // output rows per unit of parallel work
};

// Output rows [begin, end) for every token row. Weight rows go kRows at a time
// and meet all token rows while they are in cache.
void run_matmul_chunk(const MatmulJob& job, int64_t begin, int64_t end) {
  const WeightMatrix& m = *job.w;
  if (job.tiled != nullptr) {
    job.tiled(m, begin, end, *job.tiled_x, job.out);
    return;
  }
  auto activation = [&](int64_t t) { return job.activations + static_cast<uint64_t>(t) * job.activation_row_bytes; };
  int64_t r = begin;
  if (job.rows_by != nullptr && job.n_rows > 1) {
    // Several token rows: each weight block unpacked once for up to kRows of them.
    for (; r + kRows <= end; r += kRows) {
      const uint8_t* weights = m.data + static_cast<uint64_t>(r) * m.row_bytes;
      for (int64_t t = 0; t < job.n_rows; t += kRows) {
        const int n_x = static_cast<int>(std::min<int64_t>(kRows, job.n_rows - t));
        job.rows_by(weights, m.row_bytes, activation(t), job.activation_row_bytes, n_x, m.n_in,
                    job.out + t * m.n_out + r, m.n_out);
      }
    }
  } else if (job.rows != nullptr) {
    for (; r + kRows <= end; r += kRows) {
      const uint8_t* weights = m.data + static_cast<uint64_t>(r) * m.row_bytes;
      for (int64_t t = 0; t < job.n_rows; ++t) job.rows(weights, m.row_bytes, activation(t), m.n_in, job.out + t * m.n_out + r);
    }
  }
  for (; r < end; ++r) {
    const uint8_t* weights = m.data + static_cast<uint64_t>(r) * m.row_bytes;
    for (int64_t t = 0; t < job.n_rows; ++t) job.out[t * m.n_out + r] = job.dot(weights, activation(t), m.n_in);
  }
}

}  // namespace

float half_to_float(uint16_t bits) { return blocks::half_bits_to_float(bits); }

QuantizedDot quantized_dot(TensorType weight_type, KernelLevel level) {
  return row_kernels(weight_type, level).one;
}

void quantized_matmul(const WeightMatrix& w, const float* x, int64_t n_rows, float* out, ThreadPool& pool,
                      KernelLevel level, bool independent_rows) {
  const RowKernels kernels = row_kernels(w, level);
  if (kernels.one == nullptr) {
    matmul_reference(w, x, n_rows, out, pool, level);
    return;
  }
  const ActivationFormat format = activation_format(w.type);
  const int64_t weight_block = tensor_type_info(w.type).block_size;
  if (w.n_in % weight_block != 0 || w.n_in % activation_block_size(format) != 0) {
    fail("matmul: {} ({}) has rows of {} weights, not whole blocks", w.name, tensor_type_name(w.type), w.n_in);
  }
  const uint64_t row_bytes = activation_row_bytes(format, w.n_in);
  // Reused across calls: after the first call of each size, no allocation.
  thread_local std::vector<uint8_t> activations;
  activations.resize(static_cast<size_t>(n_rows) * row_bytes);
  quantize_rows(format, x, n_rows, w.n_in, activations.data(), row_bytes, pool, level);
  quantized_matmul_quantized(w, activations.data(), n_rows, out, pool, level, independent_rows);
}

bool takes_quantized_activations(TensorType weight_type) { return has_kernels(weight_type); }

void quantized_matmul_quantized(const WeightMatrix& w, const uint8_t* x, int64_t n_rows, float* out, ThreadPool& pool,
                                KernelLevel level, bool independent_rows) {
  const RowKernels kernels = row_kernels(w, level);
  if (kernels.one == nullptr) fail("matmul: {} ({}) has no integer kernels", w.name, tensor_type_name(w.type));
  const ActivationFormat format = activation_format(w.type);
  const uint64_t row_bytes = activation_row_bytes(format, w.n_in);
  MatmulJob job{&w, x, row_bytes, n_rows, out, kernels.one, kernels.four, kernels.four_by};
  thread_local TiledActivationBuffers tiled_buffers;
  TiledActivations tiled_x;
  job.tiled = independent_rows ? nullptr : tiled_for(w, n_rows, level);
  if (job.tiled != nullptr) {
    tiled_x = prepare_tiled_activations(format, x, n_rows, w.n_in, tiled_buffers);
    job.tiled_x = &tiled_x;
    job.group = kPanelRows;
  } else if (kernels.interleaved_activations) {
    thread_local std::vector<uint8_t> interleaved;
    interleaved.resize(static_cast<size_t>(n_rows) * row_bytes);
    interleave_q8_k_rows(x, n_rows, w.n_in, row_bytes, interleaved.data());
    job.activations = interleaved.data();
  }
  // Chunks of whole groups, so that every row takes the same path whatever the
  // thread count (the results do not depend on it either way).
  const int64_t n_groups = (w.n_out + job.group - 1) / job.group;
  pool.parallel_for(n_groups, [&job](int64_t begin, int64_t end, int) {
    run_matmul_chunk(job, begin * job.group, std::min(end * job.group, job.w->n_out));
  });
}

void quantized_matmul_shared(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_rows,
                             std::span<float* const> outs, ThreadPool& pool, KernelLevel level,
                             bool independent_rows) {
  if (ws.size() != outs.size() || ws.size() > kMaxShared) fail("matmul: {} matrices, {} outputs", ws.size(), outs.size());
  bool all_integer = true;
  for (const WeightMatrix* w : ws) {
    all_integer = all_integer && has_kernels(w->type) && w->n_in == ws[0]->n_in &&
                  w->n_in % tensor_type_info(w->type).block_size == 0 &&
                  w->n_in % activation_block_size(activation_format(w->type)) == 0;
  }
  if (!all_integer) {  // the single-matrix path handles (or reports) these
    for (size_t m = 0; m < ws.size(); ++m) quantized_matmul(*ws[m], x, n_rows, outs[m], pool, level, independent_rows);
    return;
  }
  // One quantized copy of x per activation format, reused by every matrix that reads it.
  thread_local std::array<std::vector<uint8_t>, kMaxShared> buffers;
  thread_local std::array<TiledActivationBuffers, kMaxShared> tiled_buffers;
  thread_local std::array<std::vector<uint8_t>, kMaxShared> interleaved_buffers;
  std::array<TiledActivations, kMaxShared> tiled_x{};
  std::array<bool, kMaxShared> tiled_ready{}, interleaved_ready{};
  std::array<ActivationFormat, kMaxShared> formats{};
  std::array<MatmulJob, kMaxShared> jobs{};
  std::array<int64_t, kMaxShared + 1> first_group{};  // jobs' group ranges, back to back
  size_t n_formats = 0;
  const int64_t n_in = ws[0]->n_in;
  for (size_t m = 0; m < ws.size(); ++m) {
    const WeightMatrix& w = *ws[m];
    const ActivationFormat format = activation_format(w.type);
    const uint64_t row_bytes = activation_row_bytes(format, n_in);
    size_t f = 0;
    while (f < n_formats && formats[f] != format) ++f;
    if (f == n_formats) {
      formats[n_formats++] = format;
      buffers[f].resize(static_cast<size_t>(n_rows) * row_bytes);
      quantize_rows(format, x, n_rows, n_in, buffers[f].data(), row_bytes, pool, level);
    }
    const RowKernels kernels = row_kernels(w, level);
    jobs[m] = MatmulJob{&w, buffers[f].data(), row_bytes, n_rows, outs[m], kernels.one, kernels.four, kernels.four_by};
    jobs[m].tiled = independent_rows ? nullptr : tiled_for(w, n_rows, level);
    if (jobs[m].tiled != nullptr) {
      if (!tiled_ready[f]) tiled_x[f] = prepare_tiled_activations(format, buffers[f].data(), n_rows, n_in, tiled_buffers[f]);
      tiled_ready[f] = true;
      jobs[m].tiled_x = &tiled_x[f];
      jobs[m].group = kPanelRows;
    } else if (kernels.interleaved_activations) {
      if (!interleaved_ready[f]) {
        interleaved_buffers[f].resize(static_cast<size_t>(n_rows) * row_bytes);
        interleave_q8_k_rows(buffers[f].data(), n_rows, n_in, row_bytes, interleaved_buffers[f].data());
      }
      interleaved_ready[f] = true;
      jobs[m].activations = interleaved_buffers[f].data();
    }
    first_group[m + 1] = first_group[m] + (w.n_out + jobs[m].group - 1) / jobs[m].group;
  }
  const size_t n_jobs = ws.size();
  // Groups start at multiples of the group size within each matrix, as in quantized_matmul,
  // so every row takes the same kernel path and gives the same result.
  pool.parallel_for(first_group[n_jobs], [&](int64_t begin, int64_t end, int) {
    for (size_t m = 0; m < n_jobs; ++m) {
      const int64_t lo = std::max(begin, first_group[m]), hi = std::min(end, first_group[m + 1]);
      if (lo >= hi) continue;
      const MatmulJob& job = jobs[m];
      run_matmul_chunk(job, (lo - first_group[m]) * job.group,
                       std::min((hi - first_group[m]) * job.group, job.w->n_out));
    }
  });
}

}  // namespace tiller::ops
