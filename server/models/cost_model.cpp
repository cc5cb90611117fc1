#include "server/models/cost_model.hpp"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "server/models/torchscript.hpp"

namespace edgeprune::models {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Tensor or Optional[Tensor] (torch.nn declares biases optional); None values are skipped later.
bool IsTensor(const Value* v) {
  if (v->type()->cast<c10::TensorType>()) return true;
  auto opt = v->type()->cast<c10::OptionalType>();
  return opt && opt->getElementType()->cast<c10::TensorType>();
}

// "features.0.weight" for a chain of prim::GetAttr from the module (graph input 0); "" otherwise.
std::string AttrPath(const Value* v, const Value* self) {
  std::vector<std::string> names;
  while (v->node()->kind() == c10::prim::GetAttr) {
    names.push_back(v->node()->s(c10::attr::name));
    v = v->node()->input();
  }
  if (v != self || names.empty()) return "";
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) path += (path.empty() ? "" : ".") + *it;
  return path;
}

std::string Parent(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

// Module path of the inlined call stack: "layer1.0" for an op in layer1's first block.
std::string ScopePath(const Node* n) {
  auto cs = n->callstack();
  if (!cs) return "";
  std::string path;
  for (const auto& entry : (*cs)->vec()) {
    const auto& info = std::get<2>(entry);
    // "SELF" marks a module calling its own method (torch.nn's _conv_forward): no new level.
    if (info && info->instance_name() != "SELF") {
      path += (path.empty() ? "" : ".") + info->instance_name();
    }
  }
  return path;
}

// The top-level node whose execution covers `n` (n itself or the If/Loop containing it).
const Node* TopLevel(const Node* n, const torch::jit::Block* top) {
  while (n->owningBlock() != top) n = n->owningBlock()->owningNode();
  return n;
}

std::string OpName(const Node* n, const torch::Tensor& weight) {
  std::string op = n->kind().toUnqualString();
  if (op == "_convolution" || op == "convolution" || op == "conv2d" || op == "conv1d" ||
      op == "conv3d") {
    if (!weight.defined()) return op;
    return "conv" + std::to_string(weight.dim() - 2) + "d";
  }
  if (!op.empty() && op.back() == '_' && op.front() != '_') op.pop_back();  // add_ → add
  return op;
}

std::int64_t ProductFrom(const torch::Tensor& t, std::int64_t start) {
  std::int64_t p = 1;
  for (std::int64_t i = start; i < t.dim(); ++i) p *= t.size(i);
  return p;
}

std::int64_t Macs(const std::string& op, const torch::Tensor& in, const torch::Tensor& out,
                  const torch::Tensor& weight, const Node* n) {
  if (!out.defined()) return 0;
  std::int64_t o = out.numel();
  if (op.rfind("conv", 0) == 0 && weight.defined()) return o * ProductFrom(weight, 1);
  if (op == "linear" && weight.defined()) return o * weight.size(-1);
  if ((op == "matmul" || op == "mm" || op == "bmm") && in.defined()) return o * in.size(-1);
  if (op == "addmm" && n->inputs().size() > 1) return o * in.size(-1);
  if (op == "batch_norm" || op == "instance_norm" || op == "layer_norm") return o;
  if (op == "mean" && in.defined()) return in.numel();  // global average pooling written as mean
  if ((op == "avg_pool2d" || op == "avg_pool1d") && n->inputs().size() > 1) {
    auto k = torch::jit::toIValue(n->input(1));
    if (k && k->isIntList()) {
      std::int64_t window = 1;
      for (auto v : k->toIntVector()) window *= v;
      return o * window;
    }
  }
  if (op == "adaptive_avg_pool2d" && in.defined() && in.dim() >= 2 && out.dim() >= 2) {
    auto ceil_div = [](std::int64_t a, std::int64_t b) { return (a + b - 1) / b; };
    return o * ceil_div(in.size(-2), out.size(-2)) * ceil_div(in.size(-1), out.size(-1));
  }
  return 0;
}

}  // namespace

Result<CostReport> EstimateCost(torch::jit::Module& module,
                                const std::vector<std::int64_t>& input_shape) {
  EP_ASSIGN_OR_RETURN(auto check, CheckModule(module, input_shape, "model"));
  (void)check;
  CostReport report;
  report.input_shape = input_shape;
  std::unordered_set<const void*> param_storages;  // parameters and buffers
  std::unordered_set<const void*> parameters_only;
  for (const auto& p : module.parameters()) {
    report.params += p.numel();
    report.param_bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
    param_storages.insert(p.storage().unsafeGetStorageImpl());
    parameters_only.insert(p.storage().unsafeGetStorageImpl());
  }
  for (const auto& b : module.buffers()) {
    report.buffer_bytes += b.numel() * static_cast<std::int64_t>(b.element_size());
    param_storages.insert(b.storage().unsafeGetStorageImpl());
  }

  std::shared_ptr<Graph> graph;
  std::vector<Value*> tracked;  // top-level tensor values, made extra outputs
  std::vector<torch::jit::IValue> outputs;
  std::vector<Node*> order;
  std::unordered_map<const Node*, std::int64_t> index;
  std::unordered_map<const Value*, std::pair<std::int64_t, std::int64_t>> range;  // [def, last]
  std::vector<std::int64_t> batch_shape = {1};
  batch_shape.insert(batch_shape.end(), input_shape.begin(), input_shape.end());
  torch::Tensor input = torch::zeros(batch_shape);
  std::size_t original_outputs = 0;
  bool was_training = module.is_training();
  try {
    graph = module.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    // Folds branches on module constants (e.g. torch.nn's padding_mode checks) so the layers
    // sit in the top-level block.
    torch::jit::ConstantPropagation(graph);
    original_outputs = graph->outputs().size();
    order.assign(graph->nodes().begin(), graph->nodes().end());
    for (std::size_t i = 0; i < order.size(); ++i) index[order[i]] = static_cast<std::int64_t>(i);
    for (Node* n : order) {
      for (Value* v : n->outputs()) {
        if (IsTensor(v)) tracked.push_back(v);
      }
    }
    // Liveness before the extra outputs add their own uses.
    const std::int64_t end = static_cast<std::int64_t>(order.size());
    std::vector<Value*> values = tracked;
    if (graph->inputs().size() > 1) values.push_back(graph->inputs()[1]);
    for (Value* v : values) {
      std::int64_t def = v->node()->kind() == c10::prim::Param ? -1 : index.at(v->node());
      std::int64_t last = def;
      for (const auto& use : v->uses()) {
        const Node* user = TopLevel(use.user, graph->block());
        last = std::max(last, user->kind() == c10::prim::Return ? end : index.at(user));
      }
      range[v] = {def, last};
    }
    for (Value* v : tracked) graph->registerOutput(v);
    module.eval();
    torch::NoGradGuard no_grad;
    torch::jit::Code code(graph, "edgeprune_cost");
    torch::jit::Stack stack = {module._ivalue(), input};
    torch::jit::InterpreterState(code).run(stack);
    outputs = std::move(stack);
    module.train(was_training);
  } catch (const std::exception& e) {
    module.train(was_training);
    return MakeError(ErrorKind::kInvalidArgument, "invalid_model",
                     std::string("model graph cannot be analysed: ") + e.what());
  }
  if (outputs.size() != original_outputs + tracked.size()) {
    return MakeError(ErrorKind::kInternal, "cost_model_failed",
                     "the instrumented graph returned an unexpected number of values");
  }
  if (original_outputs > 0 && outputs[0].isTensor()) {
    report.output_shape = outputs[0].toTensor().sizes().vec();
  }
  const Value* self = graph->inputs()[0];
  const Value* x = graph->inputs().size() > 1 ? graph->inputs()[1] : nullptr;
  std::unordered_map<const Value*, torch::Tensor> tensor_of;
  for (std::size_t i = 0; i < tracked.size(); ++i) {
    const auto& iv = outputs[original_outputs + i];
    if (iv.isTensor()) tensor_of[tracked[i]] = iv.toTensor();
  }
  if (x) tensor_of[x] = input;
  auto is_param = [&](const Value* v) {
    auto k = v->node()->kind();
    return v != x && (k == c10::prim::GetAttr || k == c10::prim::Constant);
  };

  // Costs per node.
  for (Node* n : order) {
    if (n->kind().ns() != c10::namespaces::aten || n->outputs().empty() ||
        !IsTensor(n->output(0)) || !tensor_of.count(n->output(0))) {
      continue;
    }
    LayerCost layer;
    torch::Tensor in, weight;
    std::string weight_path;
    for (const Value* v : n->inputs()) {
      if (!IsTensor(v) || !tensor_of.count(v)) continue;
      if (is_param(v)) {
        const auto& t = tensor_of[v];
        if (t.has_storage() && parameters_only.count(t.storage().unsafeGetStorageImpl())) {
          layer.params += t.numel();
        }
        std::string p = AttrPath(v, self);
        if (weight_path.empty() && !p.empty()) {
          weight_path = p;
          weight = t;
        }
      } else if (!in.defined()) {
        in = tensor_of[v];
      }
    }
    const torch::Tensor& out = tensor_of[n->output(0)];
    layer.op = OpName(n, weight);
    layer.path = weight_path.empty() ? ScopePath(n) : Parent(weight_path);
    layer.node = n->output(0)->debugName();
    if (in.defined()) layer.input_shape = in.sizes().vec();
    layer.output_shape = out.sizes().vec();
    layer.output_bytes = out.numel() * static_cast<std::int64_t>(out.element_size());
    layer.macs = Macs(layer.op, in, out, weight, n);
    if (layer.op.rfind("conv", 0) == 0 && weight.defined() && in.defined() && weight.dim() > 1 &&
        weight.size(1) > 0) {
      layer.groups = in.size(1) / weight.size(1);
    }
    report.macs += layer.macs;
    report.layers.push_back(std::move(layer));
  }

  // Peak activation memory: liveness of storages over the top-level node order.
  std::map<const void*, std::pair<std::int64_t, std::int64_t>> live;  // storage → [def, last use]
  std::map<const void*, std::int64_t> storage_bytes;
  const std::int64_t end = static_cast<std::int64_t>(order.size());
  for (const auto& [v, t] : tensor_of) {
    if (is_param(v) || !t.has_storage() || !range.count(v)) continue;
    const void* key = t.storage().unsafeGetStorageImpl();
    if (param_storages.count(key)) continue;
    auto [def, last] = range.at(v);
    auto it = live.find(key);
    if (it == live.end()) {
      live[key] = {def, last};
      storage_bytes[key] = static_cast<std::int64_t>(t.storage().nbytes());
    } else {
      it->second.first = std::min(it->second.first, def);
      it->second.second = std::max(it->second.second, last);
    }
  }
  for (std::int64_t i = -1; i <= end; ++i) {
    std::int64_t sum = 0;
    for (const auto& [key, range] : live) {
      if (range.first <= i && i <= range.second) sum += storage_bytes[key];
    }
    report.peak_activation_bytes = std::max(report.peak_activation_bytes, sum);
  }
  return report;
}

}  // namespace edgeprune::models
