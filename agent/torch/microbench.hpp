#pragma once
// LibTorch microbenchmarks the agent reports in its profile: dense matmul GFLOP/s, 3x3 convolution
// throughput at batch 1, per-inference dispatch overhead and memory bandwidth. Together they take
// about total_ms. Part of the LibTorch module (edgeprune_agent_torch.so); the agent reaches it
// through RuntimeBackend::RunMicrobench, in a short-lived `edgeprune-agent microbench` child.
//
// Thread-safety: sets LibTorch's global intra-op thread count; run from one thread at a time.

#include <string>

#include "agent/runtime/backend.hpp"

namespace edgeprune::agent::torch_module {

// Error "microbench_failed" when LibTorch throws.
Result<wire::Microbench> RunMicrobench(const MicrobenchOptions& options);

// "1.13.1" from the LibTorch headers the module was built with.
std::string TorchVersion();

}  // namespace edgeprune::agent::torch_module
