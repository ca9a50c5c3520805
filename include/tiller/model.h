// A language model loaded from GGUF, and a session that runs it over a growing
// sequence with a KV cache.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tiller/engine.h"
#include "tiller/gguf.h"
#include "tiller/hooks.h"
#include "tiller/model_config.h"
#include "tiller/tokenizer.h"

namespace tiller {

struct ModelWeights;

struct Family;  // an architecture family (src/model/family.h)

class Model {
 public:
  // Reads the file (or, with mmap, maps it) and binds every weight, checking names,
  // shapes and types. The default reads the weights into memory, huge pages where
  // the kernel allows (gguf::Residence says why); mmap maps the file instead, as
  // llama.cpp does by default: a faster load, pages shared between processes,
  // slower generation.
  struct LoadOptions {
    bool mmap = false;
  };
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options);
  static std::shared_ptr<const Model> load(const std::string& path) { return load(path, LoadOptions{}); }
  ~Model();

  const ModelConfig& config() const { return config_; }
  // The architecture family's name ("llama", "qwen2", ...) and the models people know it by.
  std::string_view family_name() const;
  std::string_view family_models() const;
  const Family& family() const { return *family_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // The file, its metadata read; the tokenizer's arrays (tokens, scores, types,
  // merges) are left empty, held by tokenizer() instead.
  const gguf::File& file() const { return file_; }
  const ModelWeights& weights() const { return *weights_; }

 private:
  Model(gguf::File file);
  gguf::File file_;
  ModelConfig config_;
  const Family* family_ = nullptr;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelWeights> weights_;
};

// Sees the stream at every hook point, after the hooks registered there:
// rows [n_rows x width] for positions first_position onwards. Reading only.
using HookObserver = std::function<void(int layer, HookPoint point, const float* rows, int64_t n_rows,
                                        int64_t width, int first_position)>;

struct SessionOptions {
  int n_ctx = 0;       // positions the KV cache holds; 0: default_context_size(model)
  int n_threads = 1;   // only for the constructor without an engine (an engine has its own)
  int n_batch = 512;   // longest chunk of tokens one forward pass computes
  int n_seq = 1;       // independent sequences the cache holds, n_ctx positions each (decode_step)
};

// The model's training context, capped at 4096 positions so the f16 cache of a
// long-context model stays small (pass -c to go further).
int default_context_size(const ModelConfig& config);

// One sequence: its KV cache, activation buffers and position. Buffers are sized
// once, at construction (the logits buffer grows to the largest request): decoding
// allocates nothing per token. Every op runs at the engine's kernel level on the
// engine's pool. One session is driven by one thread at a time; sessions of one
// engine may run on different threads at once (tiller/engine.h).
class Session {
 public:
  Session(std::shared_ptr<const Model> model, std::shared_ptr<Engine> engine, const SessionOptions& options);
  // A private engine with the best kernel level and options.n_threads threads.
  Session(std::shared_ptr<const Model> model, const SessionOptions& options);
  Session(std::shared_ptr<const Model> model, int n_ctx, int n_threads)
      : Session(std::move(model), SessionOptions{n_ctx, n_threads}) {}
  ~Session();

  // Runs `tokens` at positions n_past() onwards, in chunks of n_batch, and returns
  // their logits: every row [n_tokens x n_vocab] if all_logits, else the last row.
  // The view stays valid until the next decode.
  std::span<const float> decode(std::span<const TokenId> tokens, bool all_logits);
  // decode(tokens, true) with every row's logits written straight into `logits`
  // ([n_tokens x n_vocab] of the caller's memory, say a NumPy array's): no copy.
  void decode_into(std::span<const TokenId> tokens, std::span<float> logits);

  // Packing: runs several independent sequences in one pass, as if each were
  // decoded alone in a fresh session. `tokens` holds them one after another,
  // `lengths` their token counts. Each starts at position 0 (RoPE, hooks' row
  // positions) and attends only to itself (block-diagonal causal attention; Gemma's
  // window counts within the sequence). The cache is scratch: the session is reset
  // before, and is empty after. Rows still go through matmuls n_batch at a time, so
  // many short prompts cost what one long one does. Hooks see HookRows::positions;
  // the observer's first_position is the cache slot of the chunk's first row.
  // Returns the logits asked for: none, the last row of each sequence
  // [n_sequences x n_vocab], or every row [n_tokens x n_vocab].
  enum class PackedLogits { None, LastOfEach, All };
  std::span<const float> decode_packed(std::span<const TokenId> tokens, std::span<const int> lengths,
                                       PackedLogits logits);
  // decode_packed from block `first_layer` on: `residual` [n_rows x n_embd] is
  // the stream at blocks.first_layer.hook_resid_pre (before that point's hooks,
  // which run on it), say captured by an observer during an unsteered packed pass
  // of the same sequences; the embeddings and the blocks before are skipped. A
  // block's attention reads only its own K/V, so the result equals decode_packed's
  // whenever nothing before first_layer would have changed the stream.
  std::span<const float> decode_packed_from(int first_layer, std::span<const float> residual,
                                            std::span<const int> lengths, PackedLogits logits);
  int n_past() const { return past_[0]; }
  int n_ctx() const { return n_ctx_; }  // positions per sequence
  // Forgets positions from n onwards (n <= n_past()); the cache before n stays.
  void rewind(int n) { rewind(0, n); }
  void reset() { rewind(0); }

  // Several sequences (SessionOptions::n_seq): the cache holds n_seq independent
  // sequences of n_ctx() positions each, for continuous batching. Everything above
  // acts on sequence 0 (decode_packed uses its part of the cache as scratch).
  int n_seq() const { return static_cast<int>(past_.size()); }
  int n_past(int seq) const;
  void rewind(int seq, int n);
  // decode() on sequence `seq`, alone in its forward passes.
  std::span<const float> decode(int seq, std::span<const TokenId> tokens, bool all_logits);
  // One token for each of several distinct sequences in one forward pass: row i
  // is tokens[i] at position n_past(seqs[i]) of sequence seqs[i]. Returns every
  // row's logits [rows x n_vocab]. Each row is computed with exactly the arithmetic
  // it gets alone (row kernels only, ops/matmul.h), so a sequence's logits do not
  // depend on which others share the step. At most n_batch rows.
  std::span<const float> decode_step(std::span<const int> seqs, std::span<const TokenId> tokens);

  // Registers `hook` at blocks.layer.<point>; hooks at one point run in the order
  // they were added. With nothing registered, a hook point costs one branch.
  HookHandle add_hook(int layer, HookPoint point, HookFunction hook);
  // The same for the rows of one sequence only: it sees them with their own
  // positions, as if the sequence ran alone (in a decode_step, its one row).
  HookHandle add_hook(int layer, HookPoint point, HookFunction hook, int seq);
  void remove_hook(HookHandle handle);  // unknown handles are ignored
  void clear_hooks();
  void set_observer(HookObserver observer) { observer_ = std::move(observer); }
  const Model& model() const { return *model_; }
  Engine& engine() const { return *engine_; }

 private:
  struct Buffers;
  // Where a chunk's rows go: cache slots first_slot onwards (or row_slots), each
  // seeing the cache from first_visible (nullptr: slot 0); whose rows they are, for
  // the hooks: all of sequence `seq`, or (seq < 0) row i of row_seqs[i].
  struct ChunkRows {
    int64_t first_slot = 0;
    const int32_t* first_visible = nullptr;
    const int32_t* row_slots = nullptr;
    int seq = 0;
    const int* row_seqs = nullptr;
    bool packed = false;  // positions restart per packed sequence (HookRows::positions)
    const int32_t* sequences = nullptr;  // packed: each row's packed sequence (HookRows::sequences)
  };
  // One chunk. Buffers::positions holds the rows' positions; logits are written
  // for logit_rows, in that order.
  // With `residual` (n_rows x n_embd, `tokens` then empty), the chunk starts at
  // block first_layer from those rows instead of the embeddings.
  void forward_chunk(std::span<const TokenId> tokens, const ChunkRows& where, std::span<const int32_t> logit_rows,
                     float* logits, int first_layer = 0, const float* residual = nullptr, int64_t n_rows = 0);
  // decode_packed's body: tokens, or residual rows from block first_layer.
  std::span<const float> run_packed(std::span<const TokenId> tokens, int first_layer, std::span<const float> residual,
                                    std::span<const int> lengths, PackedLogits which);
  void check_seq(int seq) const;
  void check_tokens(int seq, std::span<const TokenId> tokens) const;
  // decode's chunks of n_batch (tokens already checked), logits written at `logits`.
  void decode_chunks(int seq, std::span<const TokenId> tokens, bool all_logits, float* logits);
  // The hooks and the observer at one point of the chunk being computed.
  static void call_hooks(void* self, int64_t layer, HookPoint point, std::vector<float>& rows);
  std::shared_ptr<const Model> model_;
  int n_ctx_, n_batch_;
  std::vector<int> past_;  // each sequence's filled positions
  std::shared_ptr<Engine> engine_;
  KernelLevel level_;  // engine_->kernel_level(), read once
  ThreadPool* pool_;   // &engine_->pool()
  std::unique_ptr<Buffers> buffers_;
  // [n_layer][n_seq * n_ctx][n_head_kv * head_dim] f16 (sequence s at slots
  // s * n_ctx onwards), allocated untouched so that memory is committed only as
  // positions fill.
  std::unique_ptr<uint16_t[]> k_cache_, v_cache_;
  std::vector<float> logits_;
  std::vector<int32_t> packed_positions_, packed_starts_, packed_sequences_;  // decode_packed's, grown on demand
  const float* rope_factors_ = nullptr;  // per-pair rope divisors for this context, or nullptr
  int64_t chunk_rows_ = 0;               // rows of the chunk being computed
  const ChunkRows* chunk_where_ = nullptr;  // and where they go
  HookObserver observer_;
  struct RegisteredHook {
    HookHandle handle;
    HookFunction function;
    int seq = -1;  // -1: every row
  };
  std::vector<std::vector<RegisteredHook>> hooks_;  // [n_layer x kHookPointCount]
  HookHandle next_handle_ = 1;
};

}  // namespace tiller
