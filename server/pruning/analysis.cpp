#include "server/pruning/analysis.hpp"

#include <algorithm>

#include "server/pruning/analyzer.hpp"

namespace edgeprune::pruning {
namespace detail {
namespace {

// Operators whose output aliases their input: no new activation memory.
bool IsAlias(const std::string& kind) {
  static const std::set<std::string> ops = {
      "aten::relu_", "aten::hardtanh_", "aten::sigmoid_", "aten::tanh_", "aten::silu_",
      "aten::hardswish_", "aten::hardsigmoid_", "aten::leaky_relu_", "aten::elu_", "aten::add_",
      "aten::mul_", "aten::view", "aten::reshape", "aten::flatten", "aten::dropout",
      "aten::dropout_", "aten::feature_dropout", "aten::alpha_dropout", "aten::contiguous"};
  return ops.count(kind) > 0;
}

}  // namespace

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

Result<Analysis> Analyzer::Run() {
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

int Analyzer::NewSpace(int64_t size, std::string name, bool frozen) {
  a_.spaces.push_back(Space{size, frozen, std::move(name)});
  a_.parent.push_back(static_cast<int>(a_.parent.size()));
  return static_cast<int>(a_.spaces.size()) - 1;
}

void Analyzer::GiveFrozenLayout(const jit::Value* v, const std::string& name) {
  auto it = shapes_.find(v);
  if (it == shapes_.end() || it->second.size() < 2) return;
  layouts_[v] = {Segment{NewSpace(it->second[1], name, true), it->second[1], 1}};
}

const Layout* Analyzer::LayoutOf(const jit::Value* v) const {
  auto it = layouts_.find(v);
  return it == layouts_.end() ? nullptr : &it->second;
}
const Shape* Analyzer::ShapeOf(const jit::Value* v) const {
  auto it = shapes_.find(v);
  return it == shapes_.end() ? nullptr : &it->second;
}

void Analyzer::Freeze(const Layout& l) {
  for (const auto& seg : l) a_.spaces[a_.Find(seg.space)].frozen = true;
}

bool Analyzer::Union(const Layout& x, const Layout& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].channels != y[i].channels || x[i].expand != y[i].expand) return false;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    int rx = a_.Find(x[i].space), ry = a_.Find(y[i].space);
    if (rx == ry) continue;
    a_.parent[ry] = rx;
    a_.spaces[rx].frozen = a_.spaces[rx].frozen || a_.spaces[ry].frozen;
    MergeBlock(rx, a_.spaces[ry].block);
  }
  return true;
}

// Two grouped convolutions with different channels per group on one space: no run of channels
// is whole for both, so the space is frozen.
void Analyzer::MergeBlock(int root, int64_t block) {
  Space& s = a_.spaces[root];
  if (block == 1 || s.block == block) return;
  if (s.block == 1) {
    s.block = block;
  } else {
    s.frozen = true;
  }
}

std::optional<std::string> Analyzer::OptionalParam(const jit::Value* v) const {
  if (IsNone(v)) return std::string();
  std::string p = AttributePath(v);
  if (p.empty()) return std::nullopt;
  if (!GetTensorAttr(m_.module, p).ok()) return std::string();
  return p;
}


void Analyzer::AddAxis(const std::string& param, int axis, const Layout& l) {
  if (!param.empty()) a_.param_axes.push_back(ParamAxis{param, axis, l});
}

// A value with a layout used anywhere the analysis did not accept: freeze its channels.
void Analyzer::CheckUses() {
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
void Analyzer::FreezeSharedParameters() {
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

void Analyzer::BuildGroups() {
  std::map<int, size_t> by_root;
  for (size_t s = 0; s < a_.spaces.size(); ++s) {
    int r = a_.Find(static_cast<int>(s));
    if (a_.spaces[r].frozen || by_root.count(r)) continue;
    by_root[r] = a_.groups.size();
    a_.groups.push_back(
        ChannelGroup{r, a_.spaces[r].name, a_.spaces[r].size, a_.spaces[r].block, {}, {}});
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

Status Analyzer::CollectTensors() {
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

void Analyzer::CollectActivations() {
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


}  // namespace detail

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
  return detail::Analyzer(m, std::move(shapes)).Run();
}

}  // namespace edgeprune::pruning
