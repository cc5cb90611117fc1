#include "server/pruning/eval_graph.hpp"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/lower_tuples.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <unistd.h>

#include "server/pruning/fold_control.hpp"

namespace edgeprune::pruning {
namespace {

namespace jit = torch::jit;

// Inputs that carry a `training` flag, by operator: forced to false for evaluation mode.
int TrainingArgIndex(const jit::Node* n) {
  const std::string kind = n->kind().toQualString();
  if (kind == "aten::batch_norm") return 5;
  if (kind == "aten::dropout" || kind == "aten::dropout_" || kind == "aten::feature_dropout" ||
      kind == "aten::alpha_dropout" || kind == "aten::feature_alpha_dropout") {
    return 2;
  }
  return -1;
}

void ResolveForEval(const jit::Module& module, std::shared_ptr<jit::Graph>& g) {
  jit::Inline(*g);
  jit::Value* no = nullptr;
  {
    jit::WithInsertPoint guard(g->block()->nodes().front());
    no = g->insertConstant(false);
  }
  std::vector<jit::Node*> training_reads;
  // Walk every block: `training` reads sit inside prim::If branches too.
  std::function<void(jit::Block*)> walk = [&](jit::Block* b) {
    for (jit::Node* n : b->nodes()) {
      if (n->kind() == c10::prim::GetAttr && n->s(c10::attr::name) == "training") {
        training_reads.push_back(n);
      }
      int idx = TrainingArgIndex(n);
      if (idx >= 0 && static_cast<size_t>(idx) < n->inputs().size()) n->replaceInput(idx, no);
      for (jit::Block* inner : n->blocks()) walk(inner);
    }
  };
  walk(g->block());
  for (jit::Node* n : training_reads) {
    n->output()->replaceAllUsesWith(no);
    n->destroy();
  }
  jit::ConstantPropagation(g);
  // Configuration attributes (`use_res_connect`, `memory_efficient`, ...) decide branches too.
  FoldConfigurationFlow(module, g);
  // Dropout in evaluation mode is the identity: drop the call (one operator less per inference).
  std::vector<jit::Node*> dropouts;
  for (jit::Node* n : g->nodes()) {
    int idx = TrainingArgIndex(n);
    if (idx < 0 || n->kind() == c10::aten::batch_norm) continue;
    auto training = jit::constant_as<bool>(n->input(idx));
    if (training && !*training) dropouts.push_back(n);
  }
  for (jit::Node* n : dropouts) {
    n->output()->replaceAllUsesWith(n->input(0));
    n->destroy();
  }
  jit::EliminateDeadCode(g);
  // Operators returning two tensors reach scripted graphs packed and unpacked again
  // (adaptive_max_pool1d's values and indices: TupleConstruct → TupleIndex); traced graphs use the
  // values directly. Unpack them so both forms show the analysis the same operators.
  jit::LowerSimpleTuples(g);
  jit::EliminateDeadCode(g);
}

Result<torch::jit::Module> ResolveModule(const torch::jit::Module& root, const std::string& path,
                                         std::string* leaf) {
  torch::jit::Module m = root;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    if (dot == std::string::npos) break;
    std::string part = path.substr(start, dot - start);
    if (!m.hasattr(part) || !m.attr(part).isModule()) {
      return MakeError(ErrorKind::kInvalidArgument, "no_such_attribute",
                       "module has no submodule '" + part + "' on path '" + path + "'");
    }
    m = m.attr(part).toModule();
    start = dot + 1;
  }
  *leaf = path.substr(start);
  if (!m.hasattr(*leaf)) {
    return MakeError(ErrorKind::kInvalidArgument, "no_such_attribute",
                     "module has no attribute '" + path + "'");
  }
  return m;
}

}  // namespace

Result<std::string> ReadModelBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorKind::kNotFound, "model_not_found", "cannot open model file " + path);
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string bytes = buf.str();
  // TorchScript archives are zip files: "PK\x03\x04".
  if (bytes.size() < 4 || bytes.compare(0, 4, std::string("PK\x03\x04", 4)) != 0) {
    return MakeError(ErrorKind::kInvalidArgument, "not_torchscript",
                     path + " is not a TorchScript archive (no zip header)");
  }
  return bytes;
}

Result<EvalModule> LoadEvalModule(const std::string& bytes, const std::string& name) {
  try {
    std::istringstream in(bytes);
    EvalModule em{torch::jit::load(in, torch::kCPU), nullptr};
    em.module.eval();
    if (!em.module.find_method("forward")) {
      return MakeError(ErrorKind::kInvalidArgument, "no_forward",
                       name + " has no forward method");
    }
    em.graph = jit::toGraphFunction(em.module.get_method("forward").function()).graph();
    ResolveForEval(em.module, em.graph);
    return em;
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    return MakeError(ErrorKind::kInvalidArgument, "not_torchscript",
                     name + " is not a loadable TorchScript module: " + what);
  }
}

Result<std::string> SaveModuleBytes(const torch::jit::Module& module) {
  try {
    std::ostringstream out;
    module.save(out);
    return out.str();
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInternal, "save_failed",
                     std::string("cannot serialize module: ") + e.what());
  }
}

Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return MakeError(ErrorKind::kIo, "write_failed", "cannot create " + tmp.string());
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      return MakeError(ErrorKind::kIo, "write_failed", "cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return MakeError(ErrorKind::kIo, "write_failed",
                     "cannot rename into " + path + ": " + ec.message());
  }
  return Ok();
}

std::string AttributePath(const torch::jit::Value* v) {
  std::string path;
  while (v->node()->kind() == c10::prim::GetAttr) {
    const std::string& part = v->node()->s(c10::attr::name);
    path = path.empty() ? part : part + "." + path;
    v = v->node()->input(0);
  }
  // The chain must end at the graph's first input (self).
  if (v->node()->kind() != c10::prim::Param || v->offset() != 0) return "";
  return path;
}

Result<at::Tensor> GetTensorAttr(const torch::jit::Module& m, const std::string& path) {
  std::string leaf;
  EP_ASSIGN_OR_RETURN(torch::jit::Module owner, ResolveModule(m, path, &leaf));
  c10::IValue v = owner.attr(leaf);
  if (!v.isTensor()) {
    return MakeError(ErrorKind::kInvalidArgument, "not_a_tensor",
                     "attribute '" + path + "' is not a tensor");
  }
  return v.toTensor();
}

Status SetTensorAttr(torch::jit::Module& m, const std::string& path, const at::Tensor& t) {
  std::string leaf;
  EP_ASSIGN_OR_RETURN(torch::jit::Module owner, ResolveModule(m, path, &leaf));
  owner.setattr(leaf, t);
  return Ok();
}

Result<ShapeMap> ProbeShapes(const EvalModule& m, const std::vector<int64_t>& input_shape) {
  // Copy the graph, return every top-level tensor value in one tuple, interpret once.
  auto g = m.graph->copy();
  std::vector<const jit::Value*> originals;
  std::vector<jit::Value*> copies;
  auto collect = [](const std::shared_ptr<jit::Graph>& graph, auto& out) {
    for (auto* v : graph->inputs()) out.push_back(v);
    for (auto* n : graph->nodes()) {
      for (auto* v : n->outputs()) out.push_back(v);
    }
  };
  collect(m.graph, originals);
  collect(g, copies);
  if (originals.size() != copies.size()) {
    return MakeError(ErrorKind::kInternal, "probe_failed", "graph copy does not match");
  }
  std::vector<size_t> tensor_idx;
  std::vector<jit::Value*> outs;
  for (size_t i = 0; i < copies.size(); ++i) {
    if (copies[i]->type()->kind() == c10::TypeKind::TensorType) {
      tensor_idx.push_back(i);
      outs.push_back(copies[i]);
    }
  }
  while (!g->outputs().empty()) g->eraseOutput(0);
  jit::Node* tuple = g->createTuple(outs);
  g->appendNode(tuple);
  g->registerOutput(tuple->output());
  try {
    torch::NoGradGuard no_grad;
    jit::Code code(g, "probe");
    jit::InterpreterState state(code);
    std::vector<c10::IValue> stack = {m.module._ivalue(), torch::zeros(input_shape)};
    state.run(stack);
    auto elems = stack.back().toTupleRef().elements();
    ShapeMap shapes;
    for (size_t k = 0; k < tensor_idx.size(); ++k) {
      if (elems[k].isTensor()) shapes[originals[tensor_idx[k]]] = elems[k].toTensor().sizes().vec();
    }
    return shapes;
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    return MakeError(ErrorKind::kInvalidArgument, "input_shape_mismatch",
                     "model does not run on an input of the declared shape: " + what);
  }
}

Result<at::Tensor> RunForward(torch::jit::Module& m, const at::Tensor& input,
                              const std::string& name) {
  try {
    torch::NoGradGuard no_grad;
    c10::IValue out = m.forward({input});
    if (!out.isTensor()) {
      return MakeError(ErrorKind::kInvalidArgument, "output_not_tensor",
                       name + " does not return a single tensor");
    }
    return out.toTensor();
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    return MakeError(ErrorKind::kInvalidArgument, "forward_failed",
                     name + " failed to run: " + what);
  }
}

}  // namespace edgeprune::pruning
