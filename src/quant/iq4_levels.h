// The 16 levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl): a 4-bit index picks
// one, the block scale multiplies it. One table for the dequantizer and the product
// kernels, so that both read the same weights.
#pragma once

#include <array>
#include <cstdint>

namespace tiller::quant {

// Spaced closer near zero, where most weights lie, than a uniform 4-bit grid.
inline constexpr std::array<int8_t, 16> kIq4nlLevels = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                        1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace tiller::quant
