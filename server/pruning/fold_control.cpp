#include "server/pruning/fold_control.hpp"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/loop_unrolling.h>
#include <torch/csrc/jit/passes/peephole_list_idioms.h>
#include <torch/csrc/jit/passes/remove_mutation.h>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {
namespace {

namespace jit = torch::jit;

// Values a constant node can hold and forward cannot change: configuration, not state.
bool IsConfiguration(const c10::IValue& v) {
  if (v.isBool() || v.isInt() || v.isDouble() || v.isString() || v.isNone()) return true;
  if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) {
      if (!IsConfiguration(e)) return false;
    }
    return true;
  }
  return false;
}

// A tensor slot (a parameter, a buffer, or an optional one such as a bias set to None) stays an
// attribute even when it holds None: the shrinking and batch-norm folding steps address tensors by
// attribute path.
bool IsTensorSlot(const c10::TypePtr& t) {
  if (t->kind() == c10::TypeKind::TensorType) return true;
  if (auto opt = t->cast<c10::OptionalType>()) {
    return opt->getElementType()->kind() == c10::TypeKind::TensorType;
  }
  return false;
}

std::optional<c10::IValue> ReadAttribute(const jit::Module& root, const std::string& path) {
  c10::IValue v = root._ivalue();
  size_t start = 0;
  while (true) {
    if (!v.isObject()) return std::nullopt;
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const auto& obj = v.toObjectRef();
    if (!obj.type()->hasAttribute(part)) return std::nullopt;
    v = obj.getAttr(part);
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

void ForEachNode(jit::Block* b, const std::function<void(jit::Node*)>& fn) {
  for (jit::Node* n : b->nodes()) {
    fn(n);
    for (jit::Block* inner : n->blocks()) ForEachNode(inner, fn);
  }
}

int FoldAttributeReads(const jit::Module& root, jit::Graph& g) {
  // An attribute forward assigns anywhere is state: none of that name is folded.
  std::set<std::string> assigned;
  std::vector<jit::Node*> reads;
  ForEachNode(g.block(), [&](jit::Node* n) {
    if (n->kind() == c10::prim::SetAttr) assigned.insert(n->s(c10::attr::name));
    if (n->kind() == c10::prim::GetAttr) reads.push_back(n);
  });
  int folded = 0;
  for (jit::Node* n : reads) {
    if (assigned.count(n->s(c10::attr::name)) || IsTensorSlot(n->output()->type())) continue;
    std::string path = AttributePath(n->output());
    if (path.empty()) continue;
    auto value = ReadAttribute(root, path);
    if (!value || !IsConfiguration(*value)) continue;
    jit::WithInsertPoint guard(n);
    auto constant = g.insertConstant(*value);
    n->output()->replaceAllUsesWith(constant);
    n->destroy();
    ++folded;
  }
  return folded;
}

// DenseNet builds its features list with `append` and reads it with `cat` between appends;
// RemoveListMutation cannot merge those appends (the list is read before them). A list made by
// prim::ListConstruct that is only appended to and read by operators that do not keep it, all in
// its own block, is equivalent to a fresh ListConstruct of the elements so far at every read: the
// analysis then sees each `cat` with the exact values it concatenates.
bool SnapshotAppendedLists(jit::Graph& g, jit::Block* b) {
  static const std::set<c10::Symbol> readers = {c10::aten::cat, c10::aten::stack, c10::aten::len,
                                                c10::aten::__getitem__};
  bool changed = false;
  std::vector<jit::Node*> lists;
  for (jit::Node* n : b->nodes()) {
    for (jit::Block* inner : n->blocks()) changed |= SnapshotAppendedLists(g, inner);
    if (n->kind() == c10::prim::ListConstruct) lists.push_back(n);
  }
  for (jit::Node* list : lists) {
    jit::Value* v = list->output();
    bool appended = false, plain = true;
    for (const auto& use : v->uses()) {
      jit::Node* user = use.user;
      bool append =
          user->kind() == c10::aten::append && use.offset == 0 && !user->output()->hasUses();
      appended |= append;
      plain = plain && user->owningBlock() == b && (append || readers.count(user->kind()));
    }
    if (!appended || !plain) continue;
    std::vector<jit::Value*> elements(list->inputs().begin(), list->inputs().end());
    std::vector<jit::Node*> appends;
    for (jit::Node* n = list->next(); n != b->return_node(); n = n->next()) {
      for (size_t i = 0; i < n->inputs().size(); ++i) {
        if (n->input(i) != v) continue;
        if (n->kind() == c10::aten::append) {
          elements.push_back(n->input(1));
          appends.push_back(n);
          break;
        }
        jit::WithInsertPoint guard(n);
        jit::Node* snapshot = g.insertNode(
            g.createList(v->type()->expectRef<c10::ListType>().getElementType(), elements));
        n->replaceInput(i, snapshot->output());
      }
    }
    for (jit::Node* n : appends) n->destroy();
    changed = true;
  }
  return changed;
}

// UnrollConstantLoops copies the body once per iteration: only when every constant loop is short
// (model code iterates over a few blocks or list entries, not over data).
bool ConstantLoopsAreShort(jit::Graph& g) {
  constexpr int64_t kMaxTrips = 64;
  bool shorts = true;
  ForEachNode(g.block(), [&](jit::Node* n) {
    if (n->kind() != c10::prim::Loop) return;
    auto trips = jit::constant_as<int64_t>(n->input(0));
    if (trips && *trips > kMaxTrips) shorts = false;
  });
  return shorts;
}

}  // namespace

int FoldConfigurationFlow(const jit::Module& root, std::shared_ptr<jit::Graph>& graph) {
  int total = 0;
  // Each round can expose more: a folded branch may hold further attribute reads, an unrolled
  // loop constant conditions. Real models settle in two or three rounds.
  for (int round = 0; round < 8; ++round) {
    int folded = FoldAttributeReads(root, *graph);
    total += folded;
    bool changed = folded > 0;
    changed |= jit::ConstantPropagation(graph);
    changed |= jit::RemoveListMutation(graph);
    changed |= SnapshotAppendedLists(*graph, graph->block());
    changed |= jit::PeepholeOptimizeListIdioms(graph);
    if (ConstantLoopsAreShort(*graph)) changed |= jit::UnrollConstantLoops(graph);
    jit::EliminateDeadCode(graph);
    if (!changed) break;
  }
  return total;
}

}  // namespace edgeprune::pruning
