#pragma once
// `edgeprune-server prune --master m.pt --dataset fashion-mnist --max-macs 0.25x --out v.pt`:
// prunes a master to a budget (each bound relative, "0.25x" of the master, or absolute, with an
// optional k/M/G suffix), fine-tunes with distillation, writes the variant atomically and prints
// progress and the report (JSON too with --json). LibTorch-free header for the command table.
// Exit codes: 0 success, 2 bad flags, 1 any other failure (message names the reason).

#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::pruning {

int RunPruneCommand(int argc, char** argv);

// "0.25x" → fraction of `master_value`; "1.5M", "200k", "12345" → absolute. Errors name `flag`.
Result<double> ParseBound(const std::string& flag, const std::string& text, double master_value);

}  // namespace edgeprune::pruning
