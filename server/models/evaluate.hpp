#pragma once
// Evaluation of a TorchScript classifier: top-1 accuracy on a data set split, CPU latency at
// batch 1 (warm-up, then median and p95 over N timed runs at a fixed intra-op thread count) and
// throughput at a larger batch. Inference runs under InferenceMode in eval mode.
//
// Thread-safety: uses the module's forward and sets the process-wide intra-op thread count.

#include <torch/script.h>

#include <cstdint>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/models/dataset.hpp"

namespace edgeprune::models {

struct AccuracyResult {
  double accuracy = 0.0;  // 0..1
  std::int64_t correct = 0;
  std::int64_t total = 0;
};

// Errors ("invalid_model") when the data set's image shape does not fit the model or the
// model's output is not one logit per class of the data set.
Result<AccuracyResult> EvaluateAccuracy(torch::jit::Module& module, const Dataset& data,
                                        std::int64_t batch_size = 256);

struct LatencyOptions {
  int warmup = 10;
  int runs = 100;
  int threads = 1;             // intra-op threads during the measurement (> 0)
  std::int64_t batch_size = 1;
};

struct LatencyStats {
  double p50_ms = 0.0;
  double p95_ms = 0.0;
  double mean_ms = 0.0;
  double min_ms = 0.0;
  double items_per_second = 0.0;  // batch_size / p50
  int runs = 0;
  int threads = 0;
  std::int64_t batch_size = 0;
};

// input_shape {C, H, W}; random input, same each run.
Result<LatencyStats> MeasureLatency(torch::jit::Module& module,
                                    const std::vector<std::int64_t>& input_shape,
                                    const LatencyOptions& options);

}  // namespace edgeprune::models
