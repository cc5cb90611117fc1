#include "server/pruning/analysis.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <numeric>
#include <optional>

namespace edgeprune::pruning {
namespace {

namespace jit = torch::jit;
using Shape = std::vector<int64_t>;

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

// Operators whose output aliases their input: no new activation memory.
bool IsAlias(const std::string& kind) {
  static const std::set<std::string> ops = {
      "aten::relu_", "aten::hardtanh_", "aten::sigmoid_", "aten::tanh_", "aten::silu_",
      "aten::hardswish_", "aten::hardsigmoid_", "aten::leaky_relu_", "aten::elu_", "aten::add_",
      "aten::mul_", "aten::view", "aten::reshape", "aten::flatten", "aten::dropout",
      "aten::dropout_", "aten::feature_dropout", "aten::alpha_dropout", "aten::contiguous"};
  return ops.count(kind) > 0;
}

bool IsElementwiseBinary(const std::string& kind) {
  static const std::set<std::string> ops = {"aten::add", "aten::add_", "aten::sub",
                                            "aten::mul", "aten::mul_", "aten::div"};
  return ops.count(kind) > 0;
}

std::optional<int64_t> ConstInt(const jit::Value* v) {
  auto c = jit::constant_as<int64_t>(v);
  return c ? std::optional<int64_t>(*c) : std::nullopt;
}

std::optional<std::vector<int64_t>> ConstIntList(const jit::Value* v) {
  if (auto l = jit::constant_as<c10::List<int64_t>>(v)) return l->vec();
  if (v->node()->kind() == c10::prim::ListConstruct) {
    std::vector<int64_t> out;
    for (auto* in : v->node()->inputs()) {
      auto i = ConstInt(in);
      if (!i) return std::nullopt;
      out.push_back(*i);
    }
    return out;
  }
  return std::nullopt;
}

bool IsNone(const jit::Value* v) { return v->type()->kind() == c10::TypeKind::NoneType; }

int64_t Product(const Shape& s, size_t from) {
  int64_t p = 1;
  for (size_t i = from; i < s.size(); ++i) p *= s[i];
  return p;
}

Layout Expanded(Layout l, int64_t by) {
  for (auto& seg : l) seg.expand *= by;
  return l;
}

class Analyzer {
 public:
  Analyzer(const EvalModule& m, ShapeMap shapes) : m_(m), shapes_(std::move(shapes)) {}

  Result<Analysis> Run() {
    auto* g = m_.graph.get();
    size_t pos = 0;
    for (auto* n : g->nodes()) position_[n] = ++pos;
    end_ = pos + 1;
    for (size_t i = 1; i < g->inputs().size(); ++i) GiveFrozenLayout(g->inputs()[i], "input");
    for (auto* n : g->nodes()) {
      // Attribute reads (weights) and constants carry no activations.
      if (n->kind() == c10::prim::GetAttr || n->kind() == c10::prim::Constant) continue;
      if (!Handle(n)) {
        for (auto* out : n->outputs()) GiveFrozenLayout(out, "");
      }
    }
    CheckUses();
    FreezeSharedParameters();
    BuildGroups();
    EP_RETURN_IF_ERROR(CollectTensors());
    CollectActivations();
    const jit::Value* out = g->outputs().size() == 1 ? g->outputs()[0] : nullptr;
    if (out && shapes_.count(out)) a_.output_shape = shapes_.at(out);
    return std::move(a_);
  }

 private:
  int NewSpace(int64_t size, std::string name, bool frozen) {
    a_.spaces.push_back(Space{size, frozen, std::move(name)});
    a_.parent.push_back(static_cast<int>(a_.parent.size()));
    return static_cast<int>(a_.spaces.size()) - 1;
  }

  void GiveFrozenLayout(const jit::Value* v, const std::string& name) {
    auto it = shapes_.find(v);
    if (it == shapes_.end() || it->second.size() < 2) return;
    layouts_[v] = {Segment{NewSpace(it->second[1], name, true), it->second[1], 1}};
  }

  const Layout* LayoutOf(const jit::Value* v) const {
    auto it = layouts_.find(v);
    return it == layouts_.end() ? nullptr : &it->second;
  }
  const Shape* ShapeOf(const jit::Value* v) const {
    auto it = shapes_.find(v);
    return it == shapes_.end() ? nullptr : &it->second;
  }

  void Freeze(const Layout& l) {
    for (const auto& seg : l) a_.spaces[a_.Find(seg.space)].frozen = true;
  }

  bool Union(const Layout& x, const Layout& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].channels != y[i].channels || x[i].expand != y[i].expand) return false;
    }
    for (size_t i = 0; i < x.size(); ++i) {
      int rx = a_.Find(x[i].space), ry = a_.Find(y[i].space);
      if (rx == ry) continue;
      a_.parent[ry] = rx;
      a_.spaces[rx].frozen = a_.spaces[rx].frozen || a_.spaces[ry].frozen;
    }
    return true;
  }

  // "" for an absent optional tensor (None, or an attribute holding None); nullopt when the value
  // is not a module attribute at all.
  std::optional<std::string> OptionalParam(const jit::Value* v) const {
    if (IsNone(v)) return std::string();
    std::string p = AttributePath(v);
    if (p.empty()) return std::nullopt;
    if (!GetTensorAttr(m_.module, p).ok()) return std::string();
    return p;
  }

  void Accept(const jit::Node* n, size_t input) { accepted_.insert({n, input}); }

  void AddAxis(const std::string& param, int axis, const Layout& l) {
    if (!param.empty()) a_.param_axes.push_back(ParamAxis{param, axis, l});
  }

  // Returns false when the node is not understood; its tensor uses are then frozen.
  bool Handle(jit::Node* n) {
    const std::string kind = n->kind().toQualString();
    if (kind == "aten::conv2d" || kind == "aten::conv1d") return HandleConv(n, 6, false);
    if (kind == "aten::_convolution") return HandleConv(n, 8, true);
    if (kind == "aten::linear") return HandleLinear(n);
    if (kind == "aten::batch_norm") return HandleBatchNorm(n);
    if (PassThroughOps().count(kind)) return PassThrough(n);
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

  bool HandleConv(jit::Node* n, size_t groups_idx, bool check_transposed) {
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
    if (ok && *groups == cin && cout == cin) {
      AddAxis(wp, 0, *lin);
      AddAxis(bp, 0, *lin);
      a_.rewrites.push_back(ConstantRewrite{n, groups_idx, -1, *lin});
      layouts_[n->output()] = *lin;
      a_.layers.push_back(LayerShape{wp, *lin, *lin, factor, true, -1});
      Accept(n, 0);
      return true;
    }
    // Grouped (or otherwise unsupported) convolution: counted, never pruned.
    int64_t g = groups ? *groups : 1;
    a_.layers.push_back(LayerShape{wp, {}, {}, factor, false, factor * cout * (cin / g)});
    return false;
  }

  bool HandleLinear(jit::Node* n) {
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

  bool HandleBatchNorm(jit::Node* n) {
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

  bool PassThrough(jit::Node* n) {
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

  bool HandleReduce(jit::Node* n) {
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

  bool HandleFlatten(jit::Node* n) {
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

  bool HandleView(jit::Node* n) {
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

  bool HandleBinary(jit::Node* n) {
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
  static bool IsChannelGate(const Shape& gate, const Shape& x) {
    if (gate.size() != x.size() || gate.size() < 3 || gate == x) return false;
    if (gate[0] != x[0] || gate[1] != x[1]) return false;
    for (size_t i = 2; i < gate.size(); ++i) {
      if (gate[i] != 1) return false;
    }
    return true;
  }

  bool HandleCat(jit::Node* n) {
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

  // A value with a layout used anywhere the analysis did not accept: freeze its channels.
  void CheckUses() {
    for (const auto& [v, layout] : layouts_) {
      for (const auto& use : v->uses()) {
        const jit::Node* user = use.user;
        if (accepted_.count({user, use.offset})) continue;
        // Shape queries read the pruned size at run time, wherever they sit.
        if (user->kind() == c10::aten::size || user->kind() == c10::aten::dim) continue;
        Freeze(layout);
        if (user == m_.graph->return_node()) continue;
        while (user->owningBlock() != m_.graph->block()) user = user->owningBlock()->owningNode();
        if (user == m_.graph->return_node()) continue;
        a_.frozen_ops.insert(user->kind().toQualString());
      }
    }
  }

  // A parameter read by several operators cannot be resized for one of them alone.
  void FreezeSharedParameters() {
    std::map<std::string, int> reads;
    for (auto* n : m_.graph->nodes()) {
      for (auto* in : n->inputs()) {
        if (in->type()->kind() != c10::TypeKind::TensorType) continue;
        std::string p = AttributePath(in);
        if (!p.empty()) ++reads[p];
      }
    }
    for (const auto& pa : a_.param_axes) {
      if (reads[pa.param] > 1) {
        Freeze(pa.layout);
        a_.frozen_ops.insert("shared parameter " + pa.param);
      }
    }
  }

  void BuildGroups() {
    std::map<int, size_t> by_root;
    for (size_t s = 0; s < a_.spaces.size(); ++s) {
      int r = a_.Find(static_cast<int>(s));
      if (a_.spaces[r].frozen || by_root.count(r)) continue;
      by_root[r] = a_.groups.size();
      a_.groups.push_back(ChannelGroup{r, a_.spaces[r].name, a_.spaces[r].size, {}, {}});
    }
    for (size_t i = 0; i < a_.param_axes.size(); ++i) {
      const auto& pa = a_.param_axes[i];
      std::set<size_t> touched;
      for (const auto& seg : pa.layout) {
        auto it = by_root.find(a_.Find(seg.space));
        if (it != by_root.end()) touched.insert(it->second);
      }
      for (size_t gi : touched) {
        a_.groups[gi].member_axes.push_back(i);
        if (pa.axis == 0 && pa.layout.size() == 1 && pa.layout[0].expand == 1 &&
            a_.spaces[pa.layout[0].space].name == pa.param) {
          a_.groups[gi].producer_axes.push_back(i);
        }
      }
    }
    for (auto& g : a_.groups) {
      if (!g.producer_axes.empty()) g.name = a_.param_axes[g.producer_axes.front()].param;
    }
  }

  Status CollectTensors() {
    try {
      for (const auto& p : m_.module.named_parameters(true)) {
        a_.tensors[p.name] = p.value.sizes().vec();
        a_.parameters.insert(p.name);
      }
      for (const auto& b : m_.module.named_buffers(true)) a_.tensors[b.name] = b.value.sizes().vec();
    } catch (const std::exception& e) {
      return MakeError(ErrorKind::kInternal, "analysis_failed",
                       std::string("cannot list parameters: ") + e.what());
    }
    return Ok();
  }

  void CollectActivations() {
    auto* g = m_.graph.get();
    auto add = [&](const jit::Value* v, size_t first, bool alias) {
      const Shape* s = ShapeOf(v);
      if (!s) return;
      ActivationValue av;
      av.bytes = alias ? 0 : Product(*s, 0) * 4;
      if (const Layout* l = LayoutOf(v); l && s->size() >= 2) {
        av.layout = *l;
        av.total = (*s)[1];
      }
      av.first = first;
      av.last = first;
      for (const auto& use : v->uses()) {
        const jit::Node* user = use.user;
        while (user != g->return_node() && user->owningBlock() != g->block()) {
          user = user->owningBlock()->owningNode();
        }
        av.last = std::max(av.last, user == g->return_node() ? end_ : position_.at(user));
      }
      a_.activations.push_back(std::move(av));
    };
    for (size_t i = 1; i < g->inputs().size(); ++i) add(g->inputs()[i], 0, false);
    for (auto* n : g->nodes()) {
      if (n->kind() == c10::prim::GetAttr) continue;
      for (auto* out : n->outputs()) add(out, position_.at(n), IsAlias(n->kind().toQualString()));
    }
  }

  const EvalModule& m_;
  ShapeMap shapes_;
  Analysis a_;
  std::map<const jit::Value*, Layout> layouts_;
  std::set<std::pair<const jit::Node*, size_t>> accepted_;
  std::map<const jit::Node*, size_t> position_;
  size_t end_ = 0;
};

}  // namespace

int Analysis::Find(int s) const {
  while (parent[s] != s) s = parent[s];
  return s;
}

const ChannelGroup* Analysis::GroupOf(int space) const {
  int r = Find(space);
  for (const auto& g : groups) {
    if (g.root == r) return &g;
  }
  return nullptr;
}

int64_t KeptChannels(const Analysis& a, const KeepPlan& plan, int space) {
  auto it = plan.find(a.Find(space));
  return it == plan.end() ? a.spaces[space].size : static_cast<int64_t>(it->second.size());
}

int64_t KeptSize(const Analysis& a, const KeepPlan& plan, const Layout& layout) {
  int64_t n = 0;
  for (const auto& seg : layout) n += KeptChannels(a, plan, seg.space) * seg.expand;
  return n;
}

int64_t TotalSize(const Layout& layout) {
  int64_t n = 0;
  for (const auto& seg : layout) n += seg.channels * seg.expand;
  return n;
}

Result<Analysis> Analyze(const EvalModule& m, const std::vector<int64_t>& input_shape) {
  EP_ASSIGN_OR_RETURN(ShapeMap shapes, ProbeShapes(m, input_shape));
  return Analyzer(m, std::move(shapes)).Run();
}

}  // namespace edgeprune::pruning
