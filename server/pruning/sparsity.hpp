#pragma once
// Optional unstructured sparsity on top of structural pruning: global magnitude pruning of
// convolution and linear weights (no speed-up on dense CPU kernels, but zeros compress), and the
// compressed form a device downloads when transfer size matters (zlib over the TorchScript file).
//
// Thread-safety: mutates the given module; pure otherwise.

#include <torch/script.h>

#include <cstdint>
#include <map>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::pruning {

// Zeroes the smallest-magnitude `fraction` (0..1) of all weights with 2+ dimensions, globally.
// Returns the 0/1 masks by parameter path, for fine-tuning that keeps the zeros.
Result<std::map<std::string, at::Tensor>> ApplyMagnitudeSparsity(torch::jit::Module& m,
                                                                 double fraction);

// The classic baseline: a random `fraction` of those weights set to zero (seeded).
Result<std::map<std::string, at::Tensor>> ApplyRandomSparsity(torch::jit::Module& m,
                                                              double fraction, uint64_t seed);

// Fraction of zeros among weights with 2+ dimensions.
double WeightSparsity(const torch::jit::Module& m);

// zlib-compressed bytes (level 9) and back.
Result<std::string> Compress(const std::string& bytes);
Result<std::string> Decompress(const std::string& compressed, size_t original_size);

}  // namespace edgeprune::pruning
