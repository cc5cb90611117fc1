#pragma once
// The analysis' working state, shared by its two halves: analysis.cpp walks the graph and turns
// the spaces into groups, costs and activations; analysis_ops.cpp says what each operator does to
// the layouts of its inputs. Internal to server/pruning; nothing outside includes it.
//
// Thread-safety: an Analyzer is used once, by one thread.

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server/pruning/analysis.hpp"

namespace edgeprune::pruning::detail {

namespace jit = torch::jit;
using Shape = std::vector<int64_t>;

std::optional<int64_t> ConstInt(const jit::Value* v);
std::optional<std::vector<int64_t>> ConstIntList(const jit::Value* v);
bool IsNone(const jit::Value* v);
int64_t Product(const Shape& s, size_t from);
Layout Expanded(Layout l, int64_t by);

class Analyzer {
 public:
  Analyzer(const EvalModule& m, ShapeMap shapes) : m_(m), shapes_(std::move(shapes)) {}

  Result<Analysis> Run();

 private:
  // Bookkeeping (analysis.cpp).
  int NewSpace(int64_t size, std::string name, bool frozen);
  void GiveFrozenLayout(const jit::Value* v, const std::string& name);
  const Layout* LayoutOf(const jit::Value* v) const;
  const Shape* ShapeOf(const jit::Value* v) const;
  void Freeze(const Layout& l);
  bool Union(const Layout& x, const Layout& y);
  void MergeBlock(int root, int64_t block);
  // "" for an absent optional tensor (None, or an attribute holding None); nullopt when the value
  // is not a module attribute at all.
  std::optional<std::string> OptionalParam(const jit::Value* v) const;
  void Accept(const jit::Node* n, size_t input) { accepted_.insert({n, input}); }
  void AddAxis(const std::string& param, int axis, const Layout& l);

  // Operators (analysis_ops.cpp). Each returns false when it does not understand the node; its
  // outputs then get frozen layouts and its layout-carrying uses freeze.
  bool Handle(jit::Node* n);
  bool HandleConv(jit::Node* n, size_t groups_idx, bool check_transposed);
  bool HandleLinear(jit::Node* n);
  bool HandleBatchNorm(jit::Node* n);
  bool PassThrough(jit::Node* n);
  bool HandlePoolWithIndices(jit::Node* n);
  bool HandleReduce(jit::Node* n);
  bool HandleFlatten(jit::Node* n);
  bool HandleView(jit::Node* n);
  bool HandleBinary(jit::Node* n);
  static bool IsChannelGate(const Shape& gate, const Shape& x);
  bool HandleCat(jit::Node* n);

  // After the walk (analysis.cpp).
  void CheckUses();
  void FreezeSharedParameters();
  void BuildGroups();
  Status CollectTensors();
  void CollectActivations();

  const EvalModule& m_;
  ShapeMap shapes_;
  Analysis a_;
  std::map<const jit::Value*, Layout> layouts_;
  std::set<std::pair<const jit::Node*, size_t>> accepted_;
  std::map<const jit::Node*, size_t> position_;
  size_t end_ = 0;
};

}  // namespace edgeprune::pruning::detail
