#pragma once
// A LibTorch-free facade over the pruning engine for the server's model worker
// (server/model_worker/, the only caller in the server): build one variant. A build is the CLI's Prune() (pipeline.hpp: NetAdapt
// steps with the chosen importance, distillation, batch norms folded) with the server's settings;
// this adapter adds what a job needs around it: a checkpoint after every pruning step and resuming
// from the last one, progress as (phase, percent), the per-layer floor's fallback for small
// budgets, the emitted file's cost measured again against the budget, and the accuracy of master
// and variant on the data set's test split.
//
// Thread-safety: the returned functions may run on several threads at once (each call loads its
// own modules); LibTorch's intra-op thread setting is process-wide.

#include <cstdint>
#include <string>

#include "server/variants/variant_builder.hpp"

namespace edgeprune::pruning {

// Plain fields only: they cross a process boundary (see variant_builder.hpp). Step counts decide
// a variant's quality; the time limits are safety stops whose hits are reported in BuildOutcome
// (finetune_steps below finetune_steps_planned), so the defaults sit far above the step counts'
// time on an idle machine.
struct VariantBuildOptions {
  std::string dataset_dir;           // for "fashion-mnist"; empty: the Debian default path
  std::int64_t train_limit = 0;      // 0 = whole split (tests and --fast use a few thousand)
  std::int64_t test_limit = 0;
  std::int64_t finetune_steps = 3500;     // final fine-tuning with distillation
  double finetune_seconds = 900.0;        // its time limit
  std::int64_t batch_size = 128;
  std::string importance = "taylor";      // channel scores: l1, l2, bn or taylor
  double step_fraction = 0.5;             // share of a violated bound removed per pruning step
  std::int64_t max_prune_steps = 20;
  std::int64_t step_finetune_steps = 100;  // fine-tuning after each pruning step
  double step_finetune_seconds = 60.0;     // its time limit
  std::int64_t threads = 0;               // LibTorch intra-op threads (process-wide); 0: as is
};

variants::BuildVariantFn MakeVariantBuilder(VariantBuildOptions options);

}  // namespace edgeprune::pruning
