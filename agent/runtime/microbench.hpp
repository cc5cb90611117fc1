#pragma once
// LibTorch microbenchmarks the agent reports in its profile: dense matmul GFLOP/s, 3x3 convolution
// throughput at batch 1, per-inference dispatch overhead and memory bandwidth. Together they take
// about total_ms. This header is torch-free so agent_core can call it; only microbench.cpp
// includes LibTorch.
//
// Thread-safety: sets LibTorch's global intra-op thread count; run from one thread at a time.

#include <cstdint>
#include <string>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

struct MicrobenchOptions {
  std::int64_t threads = 1;
  std::int64_t total_ms = 1000;
};

// Error "microbench_failed" when LibTorch throws.
Result<wire::Microbench> RunMicrobench(const MicrobenchOptions& options);

// "1.13.1" from the linked LibTorch.
std::string TorchVersion();

}  // namespace edgeprune::agent
