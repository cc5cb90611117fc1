#pragma once
// A LibTorch-free facade over the pruning engine for the server's model worker
// (the worker's side of a build; worker_tasks.cpp is its only caller): build one variant. A build is the CLI's Prune() (pipeline.hpp: NetAdapt
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

#include "server/catalog/variant_build.hpp"

namespace edgeprune::model_worker {


catalog::BuildVariantFn MakeVariantBuilder(catalog::VariantBuildOptions options);

}  // namespace edgeprune::model_worker
