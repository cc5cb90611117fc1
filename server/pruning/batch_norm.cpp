#include "server/pruning/batch_norm.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edgeprune::pruning {
namespace {

namespace jit = torch::jit;

// aten::batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)
constexpr size_t kBnWeight = 1, kBnBias = 2, kBnMean = 3, kBnVar = 4, kBnTraining = 5,
                 kBnMomentum = 6, kBnEps = 7;

bool IsBatchNorm(const jit::Node* n) { return n->kind() == c10::aten::batch_norm; }

// The tensor held by the attribute `v` reads; nullopt when `v` is not such an attribute or the
// attribute holds something else (None).
std::optional<std::pair<std::string, at::Tensor>> TensorAttr(const EvalModule& m,
                                                             const jit::Value* v) {
  std::string path = AttributePath(v);
  if (path.empty()) return std::nullopt;
  auto t = GetTensorAttr(m.module, path);
  if (!t.ok()) return std::nullopt;
  return std::make_pair(path, *t);
}

bool IsNoneValue(const jit::Value* v) {
  return v->type()->kind() == c10::TypeKind::NoneType || v->mustBeNone();
}

// How many operator inputs read each attribute path, in every block.
std::map<std::string, int> AttributeReads(const jit::Graph& g) {
  std::map<std::string, int> reads;
  std::function<void(const jit::Block*)> walk = [&](const jit::Block* b) {
    for (const jit::Node* n : b->nodes()) {
      if (n->kind() != c10::prim::GetAttr) {
        for (const jit::Value* in : n->inputs()) {
          std::string p = AttributePath(in);
          if (!p.empty()) ++reads[p];
        }
      }
      for (const jit::Block* inner : n->blocks()) walk(inner);
    }
  };
  walk(g.block());
  for (const jit::Value* out : g.outputs()) {
    std::string p = AttributePath(out);
    if (!p.empty()) ++reads[p];
  }
  return reads;
}

// A chain of attribute reads from the graph's `self` to `path`, inserted at the insert point.
jit::Value* InsertAttributeRead(jit::Graph& g, const std::string& path) {
  jit::Value* v = g.inputs()[0];
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    v = g.insertGetAttr(v, path.substr(start, dot == std::string::npos ? dot : dot - start));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

// The batch norm is the only reader of the convolution's values; shape queries (size/dim, e.g.
// torch.nn's input checks) may read it too, the shape does not change.
bool OnlyUse(const jit::Value* x, const jit::Node* bn) {
  for (const auto& use : x->uses()) {
    if (use.user == bn) continue;
    if (use.user->kind() == c10::aten::size || use.user->kind() == c10::aten::dim) continue;
    return false;
  }
  return true;
}

// A layer whose output channel c is row c of its weight (axis 0) plus bias c, so a per-channel
// affine map after it folds into those rows: convolutions (not transposed) and linear layers
// (a batch norm over [N, F] features). All take (input, weight, bias, ...).
bool IsFoldableProducer(const jit::Node* c) {
  if (c->kind() == c10::aten::conv1d || c->kind() == c10::aten::conv2d ||
      c->kind() == c10::aten::conv3d || c->kind() == c10::aten::linear) {
    return true;
  }
  if (c->kind() == c10::aten::_convolution) {
    auto transposed = jit::constant_as<bool>(c->input(6));
    return transposed && !*transposed;
  }
  return false;
}

// A copy of `forward` whose batch norms chosen by `pick` run in training mode with `momentum`:
// each forward pass through it normalizes with the batch's statistics and moves the module's
// running buffers toward them in place.
std::shared_ptr<jit::Graph> TrainingModeGraph(jit::Graph& forward, double momentum,
                                              const std::function<bool(const jit::Node*)>& pick) {
  auto g = forward.copy();
  jit::Value* yes = nullptr;
  jit::Value* rate = nullptr;
  for (jit::Node* n : g->nodes()) {
    if (!IsBatchNorm(n) || !pick(n)) continue;
    if (!yes) {
      jit::WithInsertPoint guard(g->block()->nodes().front());
      yes = g->insertConstant(true);
      rate = g->insertConstant(momentum);
    }
    n->replaceInput(kBnTraining, yes);
    n->replaceInput(kBnMomentum, rate);
  }
  return g;
}

}  // namespace

Result<int> RecalibrateBatchNorm(EvalModule& m, const at::Tensor& images, int64_t batch_size,
                                 int max_batches) {
  if (!images.defined() || images.size(0) == 0 || batch_size <= 0 || max_batches <= 0) return 0;
  // A copy of the graph whose batch norms run in training mode with momentum 1: after each batch
  // the running buffers hold exactly that batch's statistics, which are summed here.
  struct Stat {
    std::string mean_path, var_path;
    at::Tensor mean, var;          // the module's buffers (updated in place by batch_norm)
    at::Tensor saved_mean, saved_var;
    at::Tensor sum_mean, sum_var;
  };
  std::vector<Stat> stats;
  auto g = TrainingModeGraph(*m.graph, 1.0, [&](const jit::Node* n) {
    auto mean = TensorAttr(m, n->input(kBnMean));
    auto var = TensorAttr(m, n->input(kBnVar));
    if (!mean || !var) return false;
    Stat s;
    s.mean_path = mean->first;
    s.var_path = var->first;
    s.mean = mean->second;
    s.var = var->second;
    s.saved_mean = s.mean.detach().clone();
    s.saved_var = s.var.detach().clone();
    s.sum_mean = torch::zeros_like(s.saved_mean, torch::kDouble);
    s.sum_var = torch::zeros_like(s.saved_var, torch::kDouble);
    stats.push_back(std::move(s));
    return true;
  });
  if (stats.empty()) return 0;
  auto restore = [&] {
    torch::NoGradGuard no_grad;
    for (auto& s : stats) {
      s.mean.copy_(s.saved_mean);
      s.var.copy_(s.saved_var);
    }
  };
  int64_t n = images.size(0);
  int batches = 0;
  try {
    torch::NoGradGuard no_grad;
    jit::Code code(g, "batch_norm_calibration");
    for (int b = 0; b < max_batches && b * batch_size < n; ++b) {
      int64_t lo = b * batch_size, hi = std::min(n, lo + batch_size);
      if (hi - lo < 2) break;  // one sample has no variance
      jit::InterpreterState state(code);
      std::vector<c10::IValue> stack = {m.module._ivalue(), images.slice(0, lo, hi)};
      state.run(stack);
      for (auto& s : stats) {
        s.sum_mean.add_(s.mean.to(torch::kDouble));
        s.sum_var.add_(s.var.to(torch::kDouble));
      }
      ++batches;
    }
    if (batches == 0) {
      restore();
      return 0;
    }
    for (auto& s : stats) {
      s.mean.copy_(s.sum_mean / double(batches));
      s.var.copy_(s.sum_var / double(batches));
    }
  } catch (const std::exception& e) {
    restore();
    std::string what = e.what();
    return MakeError(ErrorKind::kInvalidArgument, "calibration_failed",
                     "calibration batches do not fit the model while re-estimating batch-norm "
                     "statistics: " + what.substr(0, what.find('\n')));
  }
  return static_cast<int>(stats.size());
}

std::shared_ptr<torch::jit::Graph> TrainingModeGraph(const EvalModule& m, double momentum,
                                                     int* switched) {
  int count = 0;
  auto g = TrainingModeGraph(*m.graph, momentum, [&](const jit::Node* n) {
    bool has_stats = TensorAttr(m, n->input(kBnMean)) && TensorAttr(m, n->input(kBnVar));
    if (has_stats) ++count;
    return has_stats;
  });
  if (switched) *switched = count;
  return g;
}

Result<int> FoldBatchNorm(EvalModule& m, const std::vector<int64_t>& input_shape) {
  jit::Graph& g = *m.graph;
  // A linear layer maps the last axis, a batch norm normalizes axis 1: they are the same axis
  // only when the linear layer's output is [N, F]. Shapes are measured only if a linear layer
  // feeds a batch norm.
  std::optional<ShapeMap> shapes;
  auto linear_output_is_2d = [&](const jit::Value* v) -> Result<bool> {
    if (!shapes) {
      EP_ASSIGN_OR_RETURN(ShapeMap probed, ProbeShapes(m, input_shape));
      shapes = std::move(probed);
    }
    auto it = shapes->find(v);
    return it != shapes->end() && it->second.size() == 2;
  };
  std::map<std::string, int> reads = AttributeReads(g);
  auto read_once = [&](const std::string& path) { return reads[path] == 1; };
  std::vector<jit::Node*> bns;
  for (jit::Node* n : g.nodes()) {
    if (IsBatchNorm(n)) bns.push_back(n);
  }
  int folded = 0;
  try {
    torch::NoGradGuard no_grad;
    for (jit::Node* n : bns) {
      auto training = jit::constant_as<bool>(n->input(kBnTraining));
      auto eps = jit::constant_as<double>(n->input(kBnEps));
      jit::Value* x = n->input(0);
      jit::Node* conv = x->node();
      if (!training || *training || !eps || !IsFoldableProducer(conv) || !OnlyUse(x, n)) continue;
      if (conv->kind() == c10::aten::linear) {
        EP_ASSIGN_OR_RETURN(bool features, linear_output_is_2d(x));
        if (!features) continue;
      }
      auto weight = TensorAttr(m, conv->input(1));
      auto mean = TensorAttr(m, n->input(kBnMean));
      auto var = TensorAttr(m, n->input(kBnVar));
      if (!weight || !mean || !var || !read_once(weight->first) || !read_once(mean->first) ||
          !read_once(var->first)) {
        continue;
      }
      // Optional tensors: None (or an attribute holding None) means absent.
      auto optional = [&](jit::Value* v, std::optional<std::pair<std::string, at::Tensor>>* out) {
        if (IsNoneValue(v)) return true;
        std::string path = AttributePath(v);
        if (path.empty()) return false;  // computed, not a parameter: leave this one alone
        *out = TensorAttr(m, v);
        return !*out || read_once(path);
      };
      std::optional<std::pair<std::string, at::Tensor>> conv_bias, gamma, beta;
      if (!optional(conv->input(2), &conv_bias) || !optional(n->input(kBnWeight), &gamma) ||
          !optional(n->input(kBnBias), &beta)) {
        continue;
      }
      at::Tensor w = weight->second;
      int64_t channels = w.size(0);
      if (mean->second.numel() != channels || var->second.numel() != channels) continue;
      at::Tensor scale = (var->second.to(torch::kDouble) + *eps).rsqrt();
      if (gamma) scale = scale * gamma->second.to(torch::kDouble);
      at::Tensor bias = conv_bias ? conv_bias->second.to(torch::kDouble)
                                  : torch::zeros({channels}, torch::kDouble);
      bias = (bias - mean->second.to(torch::kDouble)) * scale;
      if (beta) bias = bias + beta->second.to(torch::kDouble);
      std::vector<int64_t> view(w.dim(), 1);
      view[0] = channels;
      at::Tensor new_w = (w.detach().to(torch::kDouble) * scale.reshape(view)).to(w.scalar_type());
      new_w.set_requires_grad(w.requires_grad());
      EP_RETURN_IF_ERROR(SetTensorAttr(m.module, weight->first, new_w.contiguous()));
      // The folded bias goes into the convolution's own bias tensor, else into β (or the running
      // mean), which the convolution then reads.
      const auto& holder = conv_bias ? *conv_bias : beta ? *beta : *mean;
      at::Tensor new_b = bias.to(holder.second.scalar_type()).contiguous();
      new_b.set_requires_grad(holder.second.requires_grad());
      EP_RETURN_IF_ERROR(SetTensorAttr(m.module, holder.first, new_b));
      if (!conv_bias) {
        jit::WithInsertPoint guard(conv);
        conv->replaceInput(2, InsertAttributeRead(g, holder.first));
      }
      n->output()->replaceAllUsesWith(conv->output());
      n->destroy();
      ++folded;
    }
    jit::EliminateDeadCode(m.graph);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return MakeError(ErrorKind::kInternal, "fold_failed",
                     "cannot fold batch norm into the layer before it: " + what.substr(0, what.find('\n')));
  }
  return folded;
}

}  // namespace edgeprune::pruning
