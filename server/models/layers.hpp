#pragma once
// Building blocks for TorchScript modules made in C++, laid out the way torch.jit.script lays out
// torch.nn modules: a leaf module per layer with `weight`/`bias` (and `running_mean`,
// `running_var` for batch norm) attributes and a `training` flag,
// containers whose children are named "0", "1", ... and whose forward calls each child's
// forward. Hyper-parameters (stride, padding, groups, ...) are constants in the forward source,
// as torch.nn's __constants__ are in scripted Python modules. So modules made here and modules
// scripted in Python look alike to graph analysis, and save/load in both C++ and Python.
//
// Thread-safety: builders are free functions; a built module is not thread-safe while training.

#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgeprune::models {

using CompilationUnitPtr = std::shared_ptr<torch::jit::CompilationUnit>;

// One compilation unit per model: every module type of that model lives in it.
CompilationUnitPtr NewCompilationUnit();

struct Conv2dOptions {
  std::int64_t in_channels = 1;
  std::int64_t out_channels = 1;
  std::int64_t kernel = 3;
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
};

// Kaiming-uniform initialised like torch.nn (a=sqrt(5)); weights drawn from the current global
// generator (seed it with torch::manual_seed before building).
torch::jit::Module MakeConv2d(const CompilationUnitPtr& cu, const Conv2dOptions& o);
// As above with given tensors (weight [out, in/groups, k, k], bias [out] or undefined); the
// pruning engine rebuilds smaller layers with this.
torch::jit::Module MakeConv2dFrom(const CompilationUnitPtr& cu, const Conv2dOptions& o,
                                  const torch::Tensor& weight, const torch::Tensor& bias);
// Conv1d over [N, C, L] signals (torch.nn's init, stride 1, no dilation or groups).
torch::jit::Module MakeConv1d(const CompilationUnitPtr& cu, std::int64_t in, std::int64_t out,
                              std::int64_t kernel, std::int64_t padding, bool bias);
torch::jit::Module MakeLinear(const CompilationUnitPtr& cu, std::int64_t in, std::int64_t out);
torch::jit::Module MakeLinearFrom(const CompilationUnitPtr& cu, const torch::Tensor& weight,
                                  const torch::Tensor& bias);
// Batch norm over channels; uses batch statistics and updates running stats in training mode.
torch::jit::Module MakeBatchNorm2d(const CompilationUnitPtr& cu, std::int64_t channels);
torch::jit::Module MakeBatchNorm2dFrom(const CompilationUnitPtr& cu, const torch::Tensor& weight,
                                       const torch::Tensor& bias, const torch::Tensor& running_mean,
                                       const torch::Tensor& running_var);
// The same operator over [N, C, L] signals or [N, F] feature vectors, named as torch.nn does.
torch::jit::Module MakeBatchNorm1d(const CompilationUnitPtr& cu, std::int64_t channels);
torch::jit::Module MakeReLU(const CompilationUnitPtr& cu);
torch::jit::Module MakeMaxPool2d(const CompilationUnitPtr& cu, std::int64_t kernel,
                                 std::int64_t stride);
torch::jit::Module MakeMaxPool1d(const CompilationUnitPtr& cu, std::int64_t kernel);
torch::jit::Module MakeAdaptiveAvgPool1d(const CompilationUnitPtr& cu, std::int64_t out_l);
torch::jit::Module MakeAdaptiveAvgPool2d(const CompilationUnitPtr& cu, std::int64_t out_h,
                                         std::int64_t out_w);
torch::jit::Module MakeFlatten(const CompilationUnitPtr& cu);
// Dropout (identity in eval mode).
torch::jit::Module MakeDropout(const CompilationUnitPtr& cu, double p);
// Children "0".."n-1", forward applies them in order.
torch::jit::Module MakeSequential(const CompilationUnitPtr& cu,
                                  const std::vector<torch::jit::Module>& children);

// A module of a fresh type named `type_name` (mangled unique in cu) with a `training` attribute.
torch::jit::Module NewModule(const CompilationUnitPtr& cu, const std::string& type_name);

}  // namespace edgeprune::models
