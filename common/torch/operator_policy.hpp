#pragma once
// What a TorchScript file may do before anyone runs it. A TorchScript file is a program: its
// `forward` can call any registered operator, including ones that read or write files
// (`aten::from_file`, `aten::save`) or alias memory (`aten::set_`), and loading it runs any
// `__setstate__` it defines. This is the one operator allow-list of the product; the server's model
// worker applies it to every uploaded master and every variant it builds, the agent to every
// variant before its first forward.
//
// Two checks, in this order:
//   1. CheckArchive (before torch::jit::load): refuses archives whose code defines `__setstate__`
//      (loading would run it) or that are not TorchScript archives.
//   2. FindForbiddenOperator (after loading, before any forward): every method of the module and of
//      every submodule, inlined, and every nested block, node by node. A node whose kind is not in
//      the allow-list is refused; so is an exception whose message is not a constant (or a
//      `format` of a constant with number arguments), since a computed message can carry data out.
//
// The allow-list is AllowedOperators() in operator_policy.cpp; docs/security.md explains it.
// Torch-dependent, but free of the rest of the project so the agent's runtime module can compile it.
//
// Thread-safety: pure functions.

#include <torch/script.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgeprune::model_policy {

struct Refusal {
  std::string code;     // "forbidden_operator" or "invalid_model"
  std::string message;  // for the model's owner: the operator and where it is; no server paths
};

// Reads the archive's code records. nullopt when loading it would run nothing but TorchScript's
// own deserializer.
std::optional<Refusal> CheckArchive(const std::string& path);

// The first node of the loaded module that the allow-list refuses, or nullopt.
std::optional<Refusal> FindForbiddenOperator(const torch::jit::Module& module);

bool IsAllowedOperator(std::string_view kind);
// The allow-list, sorted (for docs and tests).
std::vector<std::string> AllowedOperators();

}  // namespace edgeprune::model_policy
