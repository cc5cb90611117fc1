#pragma once
// A TorchScript module prepared for pruning: its forward graph inlined and resolved for evaluation
// mode (every `training` flag replaced by false, constant-propagated, dead code removed), so the
// analysis sees the real operators of scripted and traced models alike. The variant the pruner
// emits is this module with smaller tensors: it runs in evaluation mode only.
//
// Thread-safety: an EvalModule is owned by one thread at a time; distinct instances (loaded from
// the same bytes) are independent.

#include <torch/script.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::pruning {

struct EvalModule {
  torch::jit::Module module;                 // fresh copy: its type is shared with no one
  std::shared_ptr<torch::jit::Graph> graph;  // == the forward graph, mutated in place
};

// Reads a file into memory; error "not_torchscript" when it is not a TorchScript archive.
Result<std::string> ReadModelBytes(const std::string& path);

// Loads TorchScript bytes into a fresh module (its own compilation unit) and prepares its forward
// graph (dropout, the identity in evaluation mode, is removed). `name` names the model in errors.
Result<EvalModule> LoadEvalModule(const std::string& bytes, const std::string& name);

// Serializes a module (parameters and code) to bytes.
Result<std::string> SaveModuleBytes(const torch::jit::Module& module);

// Writes bytes to path via a temporary file in the same folder and a rename: readers never see a
// half-written model.
Status WriteFileAtomically(const std::string& path, const std::string& bytes);

// Dotted parameter path ("features.0.weight") of a value produced by a prim::GetAttr chain rooted
// at the graph's `self`; empty when the value is not such an attribute.
std::string AttributePath(const torch::jit::Value* v);

// Reads/writes a tensor attribute by dotted path.
Result<at::Tensor> GetTensorAttr(const torch::jit::Module& m, const std::string& path);
Status SetTensorAttr(torch::jit::Module& m, const std::string& path, const at::Tensor& t);

// Shapes of every tensor value of the top block, measured by running a copy of the graph on
// zeros of `input_shape` (values in nested blocks are absent).
using ShapeMap = std::map<const torch::jit::Value*, std::vector<int64_t>>;
Result<ShapeMap> ProbeShapes(const EvalModule& m, const std::vector<int64_t>& input_shape);

// Runs forward under NoGrad on one input; errors name the model and LibTorch's reason.
Result<at::Tensor> RunForward(torch::jit::Module& m, const at::Tensor& input,
                              const std::string& name);

}  // namespace edgeprune::pruning
