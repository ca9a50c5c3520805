// Decoding a token allocates nothing once a session is warm: every buffer is
// sized up front and reused. This binary counts calls to the global operator new
// (it replaces it, so it is a test executable of its own).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "support/test_files.h"
#include "support/tiny_model.h"
#include "tiller/model.h"
#include "tiller/sampler.h"

// GCC (12, -O2) sees gtest's `new TestClass` inlined next to this free() and
// warns of a mismatch; both operators are replaced here, so there is none.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<size_t> g_allocations{0};
}

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace tiller {
namespace {

void decode_and_sample(Session& session, Sampler& sampler, TokenId& token) {
  const auto logits = session.decode(std::span(&token, 1), false);
  token = sampler.sample(logits);
  sampler.accept(token);
}

TEST(NoAllocation, DecodingAndSamplingATokenAllocateNothing) {
  for (const char* architecture : {"llama", "gemma3"}) {
    testing::TinyModelSpec spec;
    spec.architecture = architecture;
    spec.n_layer = 6;
    spec.weight_type = TensorType::Q4_K;
    spec.n_embd = 256;  // a whole K-quant block per row
    spec.n_ff = 256;
    const std::string path = (testing::scratch_dir() / (std::string(architecture) + ".gguf")).string();
    testing::make_tiny_model(spec).write(path);
    Session session(Model::load(path), 64, 2);
    Sampler sampler(SamplerParams{.seed = 3}, static_cast<int32_t>(spec.n_vocab));
    session.decode(std::vector<TokenId>{1, 20, 30, 40, 50}, false);
    TokenId token = 60;
    for (int warm = 0; warm < 3; ++warm) decode_and_sample(session, sampler, token);

    const size_t before = g_allocations.load();
    for (int step = 0; step < 20; ++step) decode_and_sample(session, sampler, token);
    EXPECT_EQ(g_allocations.load() - before, 0u) << architecture << ": allocations in 20 decode steps";
  }
}

}  // namespace
}  // namespace tiller
