#pragma once
// Real TorchScript models and probe sets for the agent's runtime, download and local API tests,
// generated at test time with LibTorch (no binary fixtures to go stale). The synthetic task: an
// image of class k is bright in horizontal band k and dim elsewhere, so a linear "template"
// model gets every probe sample right and a model whose templates are shifted gets none.
//
// Thread-safety: free functions; write to distinct paths from distinct threads.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/runtime/probe_set.hpp"
#include "agent/runtime/runtime.hpp"

namespace edgeprune::testing {

struct SyntheticTask {
  std::int64_t channels = 1;
  std::int64_t height = 28;
  std::int64_t width = 28;
  std::int64_t classes = 10;
  // A signal task: the same values laid out as [C, L] with L = height·width (the template model
  // flattens its input, so it classifies either layout alike).
  bool signal = false;

  std::vector<std::int64_t> input_shape() const {
    if (signal) return {1, channels, height * width};
    return {1, channels, height, width};
  }
};

// A linear classifier over the flattened input. shift = 0 solves the task; shift ≠ 0 maps every
// class to a wrong one. Writes a TorchScript file; aborts the test on failure.
void WriteTemplateModel(const std::string& path, const SyntheticTask& task, std::int64_t shift = 0);
// A scripted model whose output has `classes` columns regardless of the task (wrong shape test).
void WriteWrongOutputModel(const std::string& path, const SyntheticTask& task, std::int64_t classes);
// A model that returns NaN scores.
void WriteNanModel(const std::string& path, const SyntheticTask& task);

// `per_class` samples of each class, values in [0, 1], deterministic for a seed.
agent::ProbeSet MakeProbeSet(const SyntheticTask& task, std::int64_t per_class,
                             std::uint32_t seed = 7);
// One input of class k (as a flat vector of task.input_shape()).
std::vector<float> MakeSample(const SyntheticTask& task, std::int64_t k);

agent::VariantSpec SpecFor(const std::string& variant_id, const std::string& path,
                           const SyntheticTask& task, double accuracy_floor = 0.0);

}  // namespace edgeprune::testing
