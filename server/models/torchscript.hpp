#pragma once
// The LibTorch boundary for whole models: load/save TorchScript files and check that a module
// runs on a declared input shape. Every LibTorch exception is caught here and becomes an Error
// naming the file (or model) and the reason.
//
// Thread-safety: free functions. SetIntraOpThreads changes process-wide LibTorch state.

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::models {

// Loads a TorchScript file (from torch.jit.script, torch.jit.trace or this toolkit) on CPU.
// Errors: "not_found" (no such file), "invalid_model" (not TorchScript: names the file and
// LibTorch's reason, first line only).
Result<torch::jit::Module> LoadModule(const std::string& path);
// Saves atomically (temp file + rename). Error "io_error" naming the path.
Status SaveModule(torch::jit::Module& module, const std::string& path);

struct ModuleCheck {
  std::int64_t num_classes = 0;  // size of the output's last dimension
  std::int64_t parameters = 0;   // parameter elements
};

// Runs forward on zeros of shape {1, input_shape...} in eval mode (training flag restored) and
// checks: at least one parameter, a Tensor output of shape [1, K]. When expected_classes > 0 it
// must equal K. Errors ("invalid_model") say which check failed; `what` names the model.
Result<ModuleCheck> CheckModule(torch::jit::Module& module,
                                const std::vector<std::int64_t>& input_shape,
                                const std::string& what, std::int64_t expected_classes = 0);

// at::set_num_threads for intra-op parallelism (LibTorch from Debian defaults to one thread).
// n <= 0 leaves the current setting. Returns the setting in effect.
int SetIntraOpThreads(int n);

// "[1, 28, 28]"
std::string ShapeToString(const std::vector<std::int64_t>& shape);

}  // namespace edgeprune::models
