#include "common/torch/operator_policy.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

namespace edgeprune::model_policy {
namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

// The allow-list: neural-network layers, tensor math and shape operations, and the TorchScript
// interpreter's own control flow and scalar/list/string operations. Nothing here reads or writes a
// file, a socket or another process, aliases foreign memory (set_, from_blob, storage), prints, or
// calls code that inlining could not resolve (prim::CallMethod on interfaces, prim::CallFunction,
// prim::fork). It covers every operator of the model zoo, the test fixtures, the pruning engine's
// output and torchvision's classification models, scripted and traced
// (tests/fixtures/torchvision/ops.txt). Adding an operator is a security review: say in the commit
// why it cannot touch anything outside its tensors. Grouped by purpose; lookups use a sorted copy.
constexpr std::array kAllowed = {
    // TorchScript control flow, values, attributes and type refinement.
    "prim::Constant", "prim::GetAttr", "prim::If", "prim::ListConstruct", "prim::ListIndex",
    "prim::ListUnpack", "prim::Loop", "prim::NumToTensor", "prim::RaiseException",
    "prim::TupleConstruct", "prim::TupleIndex", "prim::TupleUnpack", "prim::Uninitialized",
    "prim::device", "prim::dtype", "prim::max", "prim::min", "prim::requires_grad",
    "prim::unchecked_cast", "prim::ConstantChunk", "prim::shape",
    // Scalars, lists and strings (messages are checked separately, see IsSafeMessage).
    "aten::Bool", "aten::Float", "aten::Int", "aten::ScalarImplicit", "aten::__and__",
    "aten::__contains__", "aten::__derive_index", "aten::__getitem__", "aten::__is__",
    "aten::__isnot__", "aten::__not__", "aten::__or__", "aten::__range_length", "aten::append",
    "aten::dim", "aten::floordiv", "aten::format", "aten::len", "aten::numel", "aten::size",
    "aten::str",
    // Arithmetic and comparisons (tensor and scalar overloads share a kind).
    "aten::abs", "aten::add", "aten::add_", "aten::clamp", "aten::clamp_min", "aten::div",
    "aten::div_", "aten::eq", "aten::exp", "aten::floor_divide", "aten::ge", "aten::gt",
    "aten::le", "aten::log", "aten::lt", "aten::mul", "aten::mul_", "aten::ne", "aten::neg",
    "aten::pow", "aten::remainder", "aten::rsqrt", "aten::rsub", "aten::sqrt", "aten::sub",
    "aten::sub_",
    // Reductions.
    "aten::amax", "aten::argmax", "aten::max", "aten::mean", "aten::min", "aten::sum",
    // Layers.
    "aten::_convolution", "aten::adaptive_avg_pool1d", "aten::adaptive_avg_pool2d",
    "aten::adaptive_max_pool1d", "aten::adaptive_max_pool2d", "aten::addmm",
    "aten::avg_pool1d", "aten::avg_pool2d", "aten::batch_norm", "aten::conv1d",
    "aten::conv2d", "aten::group_norm", "aten::instance_norm", "aten::layer_norm",
    "aten::linear", "aten::matmul", "aten::max_pool1d", "aten::max_pool2d", "aten::mm",
    // Activations, dropout (a no-op in evaluation mode; its training path draws bernoulli_).
    "aten::bernoulli_", "aten::dropout", "aten::dropout_", "aten::elu", "aten::elu_",
    "aten::feature_dropout", "aten::gelu", "aten::hardsigmoid", "aten::hardsigmoid_",
    "aten::hardswish", "aten::hardswish_", "aten::hardtanh", "aten::hardtanh_",
    "aten::leaky_relu", "aten::leaky_relu_", "aten::log_softmax", "aten::relu", "aten::relu6",
    "aten::relu_", "aten::sigmoid", "aten::sigmoid_", "aten::silu", "aten::silu_",
    "aten::softmax", "aten::tanh",
    // Shapes and layout. `empty` is allocation without initialisation (torchvision's stochastic
    // depth fills it with bernoulli_ at once).
    "aten::cat", "aten::chunk", "aten::contiguous", "aten::detach", "aten::empty",
    "aten::expand", "aten::flatten", "aten::ones", "aten::permute", "aten::reshape",
    "aten::select", "aten::slice", "aten::split", "aten::squeeze", "aten::stack", "aten::t",
    "aten::transpose", "aten::unsqueeze", "aten::view", "aten::zeros",
};

struct Sorted {
  std::vector<std::string_view> names;
  Sorted() : names(kAllowed.begin(), kAllowed.end()) { std::sort(names.begin(), names.end()); }
};

const Sorted& AllowList() {
  static const Sorted sorted;
  return sorted;
}

// Attacker-chosen text (method names, code excerpts) goes into an error message: printable ASCII
// only, bounded.
std::string Printable(std::string_view text, std::size_t max = 120) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  return out;
}

// A message is safe when it is a constant, or `format` of a constant whose arguments are numbers,
// bools, None, lists of numbers, or strings fixed when the model was saved (constants and module
// attributes) — how scripted torchvision models raise ("Expected 4D input (got {}D input)", "mode
// has to be either 'batch' or 'row', but got {}"). A string computed at run time (str(),
// concatenation, join) is refused: that is how bytes become a message. Numbers can still carry
// tensor values; what keeps data in is that no allowed operator reads anything but the model's
// own tensors and inputs, and that the server never returns a model's message to a client.
bool IsSafeFormatArgument(const Value* v) {
  const auto& type = v->type();
  switch (type->kind()) {
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::BoolType:
    case c10::TypeKind::NoneType:
    case c10::TypeKind::NumberType: return true;
    case c10::TypeKind::ListType: {
      const auto element = type->containedType(0)->kind();
      return element == c10::TypeKind::IntType || element == c10::TypeKind::FloatType;
    }
    case c10::TypeKind::StringType: {
      const auto producer = v->node()->kind();
      return producer == c10::prim::Constant || producer == c10::prim::GetAttr;
    }
    default: return false;
  }
}

bool IsSafeMessage(const Value* v) {
  const Node* producer = v->node();
  if (producer->kind() == c10::prim::Constant) return true;
  if (producer->kind() != c10::aten::format || producer->inputs().empty()) return false;
  if (producer->inputs()[0]->node()->kind() != c10::prim::Constant) return false;
  for (std::size_t i = 1; i < producer->inputs().size(); ++i) {
    if (!IsSafeFormatArgument(producer->inputs()[i])) return false;
  }
  return true;
}

struct Where {
  std::string module;  // "" for the model itself, else the submodule's dotted name
  std::string method;
};

std::string Describe(const Where& where, const Node* node, std::size_t index) {
  std::string s = "in method '" + Printable(where.method, 60) + "'";
  s += where.module.empty() ? " of the model" : " of submodule '" + Printable(where.module, 60) + "'";
  s += ", node " + std::to_string(index);
  // Inlining pulls callees into the method being scanned; name the function the node came from.
  try {
    if (auto stack = node->callstack()) {
      const auto entries = (*stack)->vec();
      if (!entries.empty() && std::get<0>(entries.back()) != nullptr) {
        s += ", inlined from " +
             Printable(std::get<0>(entries.back())->qualname().qualifiedName(), 80);
      }
    }
  } catch (const std::exception&) {
    // No call stack: the method above is where it is.
  }
  try {
    const auto range = node->sourceRange();
    if (range.source()) {
      std::string text = range.text().str();
      text = text.substr(0, text.find('\n'));
      if (!text.empty()) s += " (`" + Printable(text) + "`)";
    }
  } catch (const std::exception&) {
    // No source text: the location above is enough.
  }
  return s;
}

std::optional<Refusal> ScanBlock(const Block* block, const Where& where, std::size_t* index) {
  for (const Node* node : block->nodes()) {
    ++*index;
    const std::string kind = node->kind().toQualString();
    if (!IsAllowedOperator(kind)) {
      return Refusal{"forbidden_operator", "operator " + Printable(kind, 80) +
                                               " is not allowed in a model " +
                                               Describe(where, node, *index)};
    }
    if (node->kind() == c10::prim::RaiseException &&
        (node->inputs().empty() || !IsSafeMessage(node->inputs()[0]))) {
      return Refusal{"forbidden_operator",
                     "prim::RaiseException with a message computed at run time is not allowed " +
                         Describe(where, node, *index)};
    }
    for (const Block* inner : node->blocks()) {
      if (auto refusal = ScanBlock(inner, where, index)) return refusal;
    }
  }
  return std::nullopt;
}

std::optional<Refusal> ScanModule(const torch::jit::Module& module, const std::string& name) {
  for (const auto& method : module.get_methods()) {
    Where where{name, method.name()};
    std::shared_ptr<torch::jit::Graph> graph;
    try {
      graph = method.graph()->copy();
      torch::jit::Inline(*graph);
    } catch (const std::exception&) {
      return Refusal{"invalid_model", "method '" + Printable(method.name(), 60) +
                                          "' cannot be analysed (its calls do not resolve)"};
    }
    std::size_t index = 0;
    if (auto refusal = ScanBlock(graph->block(), where, &index)) return refusal;
  }
  return std::nullopt;
}

bool IsCodeRecord(const std::string& name) {
  return name.rfind("code/", 0) == 0 || name.find("/code/") != std::string::npos;
}

}  // namespace

bool IsAllowedOperator(std::string_view kind) {
  const auto& names = AllowList().names;
  return std::binary_search(names.begin(), names.end(), kind);
}

std::vector<std::string> AllowedOperators() {
  const auto& names = AllowList().names;
  return std::vector<std::string>(names.begin(), names.end());
}

std::optional<Refusal> CheckArchive(const std::string& path) {
  // The code of a TorchScript archive is small; a bigger record is not a model we make or accept.
  constexpr std::size_t kMaxCodeRecord = 16 << 20;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const auto& record : reader.getAllRecords()) {
      if (!IsCodeRecord(record)) continue;
      auto [data, size] = reader.getRecord(record);
      if (size > kMaxCodeRecord) {
        return Refusal{"invalid_model", "code record '" + Printable(record, 80) + "' is too large"};
      }
      const char* bytes = static_cast<const char*>(data.get());
      static constexpr std::string_view kSetState = "__setstate__";
      if (std::search(bytes, bytes + size, kSetState.begin(), kSetState.end()) != bytes + size) {
        return Refusal{"forbidden_operator",
                       "the model defines __setstate__ (code record '" + Printable(record, 80) +
                           "'), which loading would run"};
      }
    }
  } catch (const std::exception&) {
    return Refusal{"invalid_model", "the file is not a TorchScript archive"};
  }
  return std::nullopt;
}

std::optional<Refusal> FindForbiddenOperator(const torch::jit::Module& module) {
  if (auto refusal = ScanModule(module, "")) return refusal;
  for (const auto& child : module.named_modules()) {
    if (child.name.empty()) continue;  // the model itself, scanned above
    if (auto refusal = ScanModule(child.value, child.name)) return refusal;
  }
  return std::nullopt;
}

}  // namespace edgeprune::model_policy
