// What each operator does to the channel layouts of its inputs (see analysis.hpp).

#include <set>
#include <string>

#include "server/pruning/analyzer.hpp"

namespace edgeprune::pruning::detail {
namespace {

const std::set<std::string>& PassThroughOps() {
  static const std::set<std::string> ops = {
      "aten::relu", "aten::relu_", "aten::relu6", "aten::hardtanh", "aten::hardtanh_",
      "aten::sigmoid", "aten::sigmoid_", "aten::tanh", "aten::tanh_", "aten::gelu", "aten::silu",
      "aten::silu_", "aten::hardswish", "aten::hardswish_", "aten::hardsigmoid",
      "aten::hardsigmoid_", "aten::leaky_relu", "aten::leaky_relu_", "aten::elu", "aten::elu_",
      "aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::alpha_dropout",
      "aten::contiguous", "aten::clone", "aten::max_pool2d", "aten::avg_pool2d",
      "aten::adaptive_avg_pool2d", "aten::max_pool1d", "aten::avg_pool1d",
      "aten::adaptive_avg_pool1d"};
  return ops;
}

// Max pooling that also returns the argmax positions, per channel: (values, indices).
const std::set<std::string>& PoolWithIndicesOps() {
  static const std::set<std::string> ops = {
      "aten::adaptive_max_pool1d", "aten::adaptive_max_pool2d", "aten::max_pool1d_with_indices",
      "aten::max_pool2d_with_indices"};
  return ops;
}

bool IsElementwiseBinary(const std::string& kind) {
  static const std::set<std::string> ops = {"aten::add", "aten::add_", "aten::sub",
                                            "aten::mul", "aten::mul_", "aten::div"};
  return ops.count(kind) > 0;
}

}  // namespace

bool Analyzer::Handle(jit::Node* n) {
  const std::string kind = n->kind().toQualString();
  if (kind == "aten::conv2d" || kind == "aten::conv1d") return HandleConv(n, 6, false);
  if (kind == "aten::_convolution") return HandleConv(n, 8, true);
  if (kind == "aten::linear") return HandleLinear(n);
  if (kind == "aten::batch_norm") return HandleBatchNorm(n);
  if (PassThroughOps().count(kind)) return PassThrough(n);
  if (PoolWithIndicesOps().count(kind)) return HandlePoolWithIndices(n);
  if (kind == "aten::mean" || kind == "aten::sum") return HandleReduce(n);
  if (kind == "aten::flatten") return HandleFlatten(n);
  if (kind == "aten::view" || kind == "aten::reshape") return HandleView(n);
  if (IsElementwiseBinary(kind)) return HandleBinary(n);
  if (kind == "aten::cat") return HandleCat(n);
  if (kind == "aten::size") {
    auto dim = n->inputs().size() == 2 ? ConstInt(n->input(1)) : std::nullopt;
    if (dim && *dim == 0) Accept(n, 0);
    return true;
  }
  if (kind == "aten::dim") {
    Accept(n, 0);
    return true;
  }
  // Anything else: its outputs get frozen layouts, its layout-carrying uses freeze.
  return false;
}

bool Analyzer::HandleConv(jit::Node* n, size_t groups_idx, bool check_transposed) {
  const jit::Value* x = n->input(0);
  const Layout* lin = LayoutOf(x);
  const Shape* in = ShapeOf(x);
  const Shape* out = ShapeOf(n->output());
  const Shape* w = ShapeOf(n->input(1));
  if (!lin || !in || !out || !w || in->size() < 3) return false;
  std::string wp = AttributePath(n->input(1));
  auto bias = OptionalParam(n->input(2));
  std::string bp = bias ? *bias : "";
  auto groups = ConstInt(n->input(groups_idx));
  int64_t factor = (*out)[0] * Product(*out, 2) * Product(*w, 2);
  int64_t cin = (*in)[1], cout = (*out)[1];
  bool ok = !wp.empty() && bias && groups;
  if (check_transposed) {
    auto transposed = jit::constant_as<bool>(n->input(6));
    ok = ok && transposed && !*transposed;
  }
  if (ok && TotalSize(*lin) != cin) ok = false;
  for (const auto& seg : *lin) ok = ok && seg.expand == 1;
  if (ok && *groups == 1) {
    int s = NewSpace(cout, wp, false);
    Layout lout = {Segment{s, cout, 1}};
    AddAxis(wp, 0, lout);
    AddAxis(bp, 0, lout);
    AddAxis(wp, 1, *lin);
    layouts_[n->output()] = lout;
    a_.layers.push_back(LayerShape{wp, *lin, lout, factor, false, -1});
    Accept(n, 0);
    return true;
  }
  // Depthwise (one channel per group) and grouped convolutions with as many output as input
  // channels per group: output channel c reads only its own group, so input and output are one
  // space, removed a whole group at a time (a block of `per_group` channels), and `groups`
  // follows the kept channels. The weight's axis 1 (channels per group) never changes.
  if (ok && *groups > 1 && cout == cin && cin % *groups == 0) {
    const int64_t per_group = cin / *groups;
    if (per_group > 1 && lin->size() != 1) ok = false;  // a group must lie in one space
    if (ok) {
      AddAxis(wp, 0, *lin);
      AddAxis(bp, 0, *lin);
      if (per_group > 1) MergeBlock(a_.Find((*lin)[0].space), per_group);
      a_.rewrites.push_back(ConstantRewrite{n, groups_idx, -1, *lin, per_group});
      layouts_[n->output()] = *lin;
      a_.layers.push_back(LayerShape{wp, *lin, *lin, factor * per_group, true, -1});
      Accept(n, 0);
      return true;
    }
  }
  // Grouped convolutions whose groups change width (and anything else): counted, never pruned.
  int64_t g = groups ? *groups : 1;
  a_.layers.push_back(LayerShape{wp, {}, {}, factor, false, factor * cout * (cin / g)});
  return false;
}

bool Analyzer::HandleLinear(jit::Node* n) {
  const Layout* lin = LayoutOf(n->input(0));
  const Shape* in = ShapeOf(n->input(0));
  const Shape* out = ShapeOf(n->output());
  if (!lin || !in || !out || in->size() != 2) return false;
  std::string wp = AttributePath(n->input(1));
  auto bias = OptionalParam(n->input(2));
  std::string bp = bias ? *bias : "";
  if (wp.empty() || !bias || TotalSize(*lin) != (*in)[1]) {
    a_.layers.push_back(LayerShape{wp, {}, {}, 0, false, (*out)[0] * (*in)[1] * (*out)[1]});
    return false;
  }
  int s = NewSpace((*out)[1], wp, false);
  Layout lout = {Segment{s, (*out)[1], 1}};
  AddAxis(wp, 0, lout);
  AddAxis(bp, 0, lout);
  AddAxis(wp, 1, *lin);
  layouts_[n->output()] = lout;
  a_.layers.push_back(LayerShape{wp, *lin, lout, (*out)[0], false, -1});
  Accept(n, 0);
  return true;
}

bool Analyzer::HandleBatchNorm(jit::Node* n) {
  const Layout* lin = LayoutOf(n->input(0));
  if (!lin) return false;
  std::vector<std::string> paths;
  for (size_t i = 1; i <= 4; ++i) {
    auto p = OptionalParam(n->input(i));
    if (!p) return false;
    if (!p->empty()) paths.push_back(*p);
  }
  for (const auto& p : paths) AddAxis(p, 0, *lin);
  layouts_[n->output()] = *lin;
  Accept(n, 0);
  return true;
}

bool Analyzer::PassThrough(jit::Node* n) {
  if (n->outputs().size() != 1) return false;
  const Layout* lin = LayoutOf(n->input(0));
  const Shape* in = ShapeOf(n->input(0));
  const Shape* out = ShapeOf(n->output());
  if (!lin || !in || !out || out->size() < 2 || (*out)[1] != (*in)[1]) return false;
  for (size_t i = 1; i < n->inputs().size(); ++i) {
    if (n->input(i)->type()->kind() == c10::TypeKind::TensorType) return false;
  }
  layouts_[n->output()] = *lin;
  Accept(n, 0);
  return true;
}

// Both outputs keep the channels of the input; each channel's values and positions are its own.
bool Analyzer::HandlePoolWithIndices(jit::Node* n) {
  const Layout* lin = LayoutOf(n->input(0));
  const Shape* in = ShapeOf(n->input(0));
  if (!lin || !in || n->outputs().size() != 2) return false;
  for (const jit::Value* out : n->outputs()) {
    const Shape* s = ShapeOf(out);
    if (!s || s->size() != in->size() || (*s)[1] != (*in)[1]) return false;
  }
  for (const jit::Value* out : n->outputs()) layouts_[out] = *lin;
  Accept(n, 0);
  return true;
}

bool Analyzer::HandleReduce(jit::Node* n) {
  const Layout* lin = LayoutOf(n->input(0));
  const Shape* in = ShapeOf(n->input(0));
  const Shape* out = ShapeOf(n->output());
  if (!lin || !in || !out || n->inputs().size() < 2) return false;
  auto dims = ConstIntList(n->input(1));
  if (!dims) return false;
  for (int64_t d : *dims) {
    int64_t nd = d < 0 ? d + static_cast<int64_t>(in->size()) : d;
    if (nd <= 1) return false;
  }
  if (out->size() < 2 || (*out)[1] != (*in)[1]) return false;
  layouts_[n->output()] = *lin;
  Accept(n, 0);
  return true;
}

bool Analyzer::HandleFlatten(jit::Node* n) {
  const Layout* lin = LayoutOf(n->input(0));
  const Shape* in = ShapeOf(n->input(0));
  const Shape* out = ShapeOf(n->output());
  if (!lin || !in || !out || out->size() != 2 || (*out)[0] != (*in)[0]) return false;
  auto start = ConstInt(n->input(1));
  if (!start || !(*start == 1 || *start == 1 - static_cast<int64_t>(in->size()))) return false;
  layouts_[n->output()] = Expanded(*lin, Product(*in, 2));
  Accept(n, 0);
  return true;
}

bool Analyzer::HandleView(jit::Node* n) {
  const Layout* lin = LayoutOf(n->input(0));
  const Shape* in = ShapeOf(n->input(0));
  const Shape* out = ShapeOf(n->output());
  if (!lin || !in || !out) return false;
  if (*out == *in) {
    layouts_[n->output()] = *lin;
    Accept(n, 0);
    return true;
  }
  if (out->size() != 2 || in->size() < 2 || (*out)[0] != (*in)[0]) return false;
  Layout lout = Expanded(*lin, Product(*in, 2));
  jit::Value* sizes = n->input(1);
  if (auto list = jit::constant_as<c10::List<int64_t>>(sizes)) {
    if (list->size() != 2) return false;
    if ((*list)[1] == (*out)[1]) {
      a_.rewrites.push_back(ConstantRewrite{n, 1, 1, lout});
    } else if ((*list)[1] != -1) {
      return false;
    }
  } else if (sizes->node()->kind() == c10::prim::ListConstruct &&
             sizes->node()->inputs().size() == 2) {
    auto f = ConstInt(sizes->node()->input(1));
    if (f && *f == (*out)[1]) {
      a_.rewrites.push_back(ConstantRewrite{sizes->node(), 1, -1, lout});
    } else if (!f || *f != -1) {
      return false;
    }
  } else {
    return false;
  }
  layouts_[n->output()] = lout;
  Accept(n, 0);
  return true;
}

bool Analyzer::HandleBinary(jit::Node* n) {
  const Layout* la = LayoutOf(n->input(0));
  if (!la) return false;
  const jit::Value* other = n->input(1);
  if (other->type()->kind() != c10::TypeKind::TensorType) {
    layouts_[n->output()] = *la;
    Accept(n, 0);
    return true;
  }
  const Layout* lb = LayoutOf(other);
  const Shape* sa = ShapeOf(n->input(0));
  const Shape* sb = ShapeOf(other);
  if (!lb || !sa || !sb) return false;
  // A per-channel gate ([N, C, 1, 1] times [N, C, H, W]: squeeze-and-excitation) scales channel
  // c of x by gate c, so the gate's channels and x's are one group, like a residual sum's.
  const bool gate_a = IsChannelGate(*sa, *sb), gate_b = IsChannelGate(*sb, *sa);
  if ((*sa != *sb && !gate_a && !gate_b) || !Union(*la, *lb)) return false;
  layouts_[n->output()] = gate_a ? *lb : *la;
  Accept(n, 0);
  Accept(n, 1);
  return true;
}

// `gate` is [N, C, 1, ..., 1] and broadcasts over the positions of `x` ([N, C, ...]).
bool Analyzer::IsChannelGate(const Shape& gate, const Shape& x) {
  if (gate.size() != x.size() || gate.size() < 3 || gate == x) return false;
  if (gate[0] != x[0] || gate[1] != x[1]) return false;
  for (size_t i = 2; i < gate.size(); ++i) {
    if (gate[i] != 1) return false;
  }
  return true;
}

bool Analyzer::HandleCat(jit::Node* n) {
  jit::Node* list = n->input(0)->node();
  if (list->kind() != c10::prim::ListConstruct || n->input(0)->uses().size() != 1) return false;
  auto dim = ConstInt(n->input(1));
  const Shape* out = ShapeOf(n->output());
  if (!dim || !out) return false;
  int64_t d = *dim < 0 ? *dim + static_cast<int64_t>(out->size()) : *dim;
  if (d != 1) return false;
  Layout lout;
  for (auto* v : list->inputs()) {
    const Layout* l = LayoutOf(v);
    if (!l) return false;
    lout.insert(lout.end(), l->begin(), l->end());
  }
  for (size_t i = 0; i < list->inputs().size(); ++i) Accept(list, i);
  layouts_[n->output()] = lout;
  return true;
}


}  // namespace edgeprune::pruning::detail
