#pragma once
// A LibTorch-free facade over the pruning engine for the server's job handlers: validate an
// uploaded master, and build one variant (analyze → score channels → plan for the budget →
// physical shrink → fine-tune with distillation from the master → evaluate → save).
// Added by the variants owner ("loop"); the engine's own API is unchanged.
//
// Thread-safety: the returned functions may run on several threads at once (each call loads its
// own modules); LibTorch's intra-op thread setting is process-wide.

#include <cstdint>
#include <string>

#include "server/variants/variant_builder.hpp"

namespace edgeprune::pruning {

struct VariantBuildOptions {
  std::string dataset_dir;           // for "fashion-mnist"; empty: the Debian default path
  std::int64_t train_limit = 0;      // 0 = whole split (tests and --fast use a few thousand)
  std::int64_t test_limit = 0;
  std::int64_t finetune_steps = 300;
  double finetune_seconds = 120.0;
  std::int64_t batch_size = 128;
};

variants::BuildVariantFn MakeVariantBuilder(VariantBuildOptions options);
variants::ValidateMasterFn MakeMasterValidator();

}  // namespace edgeprune::pruning
