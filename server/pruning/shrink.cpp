#include "server/pruning/shrink.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <map>
#include <numeric>

namespace edgeprune::pruning {
namespace {

namespace jit = torch::jit;

Status RewriteConstant(jit::Graph& g, const ConstantRewrite& r, int64_t value) {
  jit::Node* n = r.node;
  jit::WithInsertPoint guard(n);
  if (r.list_index < 0) {
    n->replaceInput(r.input, g.insertConstant(value));
    return Ok();
  }
  auto list = jit::constant_as<c10::List<int64_t>>(n->input(r.input));
  if (!list || static_cast<size_t>(r.list_index) >= list->size()) {
    return MakeError(ErrorKind::kInternal, "shrink_failed",
                     std::string("constant list of ") + n->kind().toQualString() +
                         " is not what the analysis saw");
  }
  std::vector<int64_t> values = list->vec();
  values[r.list_index] = value;
  n->replaceInput(r.input, g.insertConstant(c10::IValue(values)));
  return Ok();
}

}  // namespace

std::vector<int64_t> KeptIndices(const Analysis& a, const KeepPlan& plan, const Layout& layout) {
  std::vector<int64_t> idx;
  int64_t base = 0;
  for (const auto& seg : layout) {
    auto it = plan.find(a.Find(seg.space));
    std::vector<int64_t> all;
    const std::vector<int64_t>* kept = nullptr;
    if (it != plan.end()) {
      kept = &it->second;
    } else {
      all.resize(seg.channels);
      std::iota(all.begin(), all.end(), 0);
      kept = &all;
    }
    for (int64_t c : *kept) {
      for (int64_t j = 0; j < seg.expand; ++j) idx.push_back(base + c * seg.expand + j);
    }
    base += seg.channels * seg.expand;
  }
  return idx;
}

Status Shrink(EvalModule& m, const Analysis& a, const KeepPlan& plan,
              const std::vector<int64_t>& input_shape) {
  for (const auto& [root, kept] : plan) {
    int64_t size = a.spaces[root].size;
    if (kept.empty()) {
      return MakeError(ErrorKind::kInvalidArgument, "empty_group",
                       "a plan may not remove every channel of " + a.spaces[root].name);
    }
    for (size_t i = 0; i < kept.size(); ++i) {
      if (kept[i] < 0 || kept[i] >= size || (i > 0 && kept[i] <= kept[i - 1])) {
        return MakeError(ErrorKind::kInvalidArgument, "invalid_plan",
                         "kept channels of " + a.spaces[root].name +
                             " must be sorted, unique and below " + std::to_string(size));
      }
    }
    // A grouped convolution's groups go whole: aligned runs of `block` channels.
    const int64_t block = a.spaces[root].block;
    bool whole = kept.size() % static_cast<size_t>(block) == 0;
    for (size_t i = 0; whole && i < kept.size(); ++i) {
      whole = static_cast<int64_t>(i) % block == 0 ? kept[i] % block == 0
                                                   : kept[i] == kept[i - 1] + 1;
    }
    if (!whole) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_plan",
                       "kept channels of " + a.spaces[root].name + " must be whole groups of " +
                           std::to_string(block) + " channels");
    }
    if (a.spaces[root].frozen) {
      return MakeError(ErrorKind::kInvalidArgument, "frozen_group",
                       "channels of " + a.spaces[root].name + " are frozen");
    }
  }
  try {
    // Collect all axes per tensor first, then slice each tensor once.
    std::map<std::string, std::vector<std::pair<int, std::vector<int64_t>>>> cuts;
    for (const auto& pa : a.param_axes) {
      cuts[pa.param].push_back({pa.axis, KeptIndices(a, plan, pa.layout)});
    }
    for (const auto& [path, axes] : cuts) {
      EP_ASSIGN_OR_RETURN(at::Tensor t, GetTensorAttr(m.module, path));
      bool requires_grad = t.requires_grad();
      at::Tensor out = t.detach();
      bool changed = false;
      for (const auto& [axis, idx] : axes) {
        if (axis >= out.dim()) {
          return MakeError(ErrorKind::kInternal, "shrink_failed",
                           path + " has no axis " + std::to_string(axis));
        }
        if (static_cast<int64_t>(idx.size()) == out.size(axis)) continue;
        out = out.index_select(axis, torch::tensor(idx, torch::kLong));
        changed = true;
      }
      if (!changed) continue;
      out = out.contiguous().clone();
      out.set_requires_grad(requires_grad);
      EP_RETURN_IF_ERROR(SetTensorAttr(m.module, path, out));
    }
    for (const auto& r : a.rewrites) {
      EP_RETURN_IF_ERROR(RewriteConstant(*m.graph, r, KeptSize(a, plan, r.layout) / r.divisor));
    }
    jit::EliminateDeadCode(m.graph);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInternal, "shrink_failed",
                     "cannot shrink the module: " + what.substr(0, what.find('\n')));
  }
  EP_ASSIGN_OR_RETURN(at::Tensor out, RunForward(m.module, torch::zeros(input_shape), "variant"));
  if (out.sizes().vec() != a.output_shape) {
    return MakeError(ErrorKind::kInternal, "shrink_failed",
                     "the shrunk module's output shape differs from the master's");
  }
  return Ok();
}

}  // namespace edgeprune::pruning
