#pragma once
// ModelRuntime: loads a variant (TorchScript .pt) on the CPU, checks it, and serves inference
// from the active variant; a new variant is hot-swapped in atomically. Nothing here includes or
// links LibTorch: the LibTorch work is done by the runtime module (backend.hpp,
// edgeprune_agent_torch.so), opened with dlopen on the first Prepare/Install. A runtime that never
// loads a variant never maps LibTorch. A module that cannot be opened fails that Prepare with
// "runtime_unavailable" naming its path and the loader's error; nothing else changes.
//
// Check before a variant may become active: it loads, runs warm-up forwards, its output for the
// declared input shape is a finite [1, num_classes] tensor, and its accuracy on the labeled probe
// set (the variant's own, shipped with it, or the agent's local one) is not below the variant's
// floor. A variant that fails is never swapped in; the error says
// why ("model_load_failed", "model_output_invalid", "probe_accuracy_below_floor", ...).
//
// Hot swap: the active model is a std::shared_ptr<const LoadedModel> copied under a mutex. Each
// Infer() takes its own reference first, so requests in flight finish on the old model and no
// request fails or waits for a load during a swap; the old model is freed with its last request.
//
// Thread-safety: every method may be called from any thread; Infer() runs concurrently.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/runtime/probe_set.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"

namespace edgeprune::agent {

struct RuntimeOptions {
  int intra_op_threads = 1;   // LibTorch intra-op threads (process-wide), set when the module opens
  int warmup_iterations = 3;  // forwards on zeros after load, before the check
  std::string backend_path;   // the LibTorch module; empty: edgeprune_agent_torch.so next to
                              // this executable (DefaultBackendPath())
};

// What the runtime needs to know about one variant (from its verified manifest).
struct VariantSpec {
  std::string variant_id;
  std::string path;                       // TorchScript file
  std::vector<std::int64_t> input_shape;  // batch 1: [1, C, H, W]
  std::int64_t num_classes = 0;
  std::vector<double> normalize_mean;     // per channel, applied to probe and Infer() inputs; empty: none
  std::vector<double> normalize_std;
  double accuracy_floor = 0.0;            // [0, 1]
};

struct ProbeReport {
  double accuracy = 0.0;
  wire::LatencyQuantiles latency;  // batch-1 forwards over the probe set
};

struct CheckReport {
  std::string variant_id;
  double load_ms = 0.0;
  std::optional<ProbeReport> probe;  // absent when no probe set was given
};

struct InferResult {
  std::int64_t class_index = 0;
  std::vector<float> scores;  // the model's raw outputs (logits), num_classes of them
  std::int64_t latency_us = 0;  // the forward alone
  std::string variant_id;
};

// A loaded, checked model; opaque outside model_runtime.cpp.
struct LoadedModel;
class RuntimeBackend;

class ModelRuntime {
 public:
  explicit ModelRuntime(RuntimeOptions options);
  ~ModelRuntime();
  ModelRuntime(const ModelRuntime&) = delete;
  ModelRuntime& operator=(const ModelRuntime&) = delete;

  // Whether a spec describes a variant this runtime can serve at all (shape, classes,
  // normalization, floor): "invalid_variant_spec", permanent. Prepare checks it first; the update
  // flow checks it before Prepare, so a bad description is told apart from a model failing its check.
  static Status CheckSpec(const VariantSpec& spec);
  // Loads and checks a variant without activating it. probe may be null (no accuracy check); the
  // model keeps it for ProbeActive().
  // Errors a retry cannot fix (the model does not load, fails its output or probe check, or the
  // runtime module cannot be opened) are permanent.
  Result<std::shared_ptr<const LoadedModel>> Prepare(const VariantSpec& spec,
                                                     std::shared_ptr<const ProbeSet> probe,
                                                     CheckReport* report = nullptr) const;
  // Makes a prepared model the active one; returns the previous one (may be null).
  std::shared_ptr<const LoadedModel> Activate(std::shared_ptr<const LoadedModel> model);
  // Prepare + Activate: the active model is untouched when the check fails.
  Result<CheckReport> Install(const VariantSpec& spec, std::shared_ptr<const ProbeSet> probe);

  // One inference at batch 1 on the active model. data holds ElementCount(shape) floats in the
  // data set's raw scale (e.g. pixels in [0, 1]), normalized here with the variant's
  // normalize_mean/std; shape must equal the active variant's input shape. "no_active_model" (kUnavailable),
  // "invalid_shape", "invalid_input" (non-finite value), "inference_failed" (kInternal).
  Result<InferResult> Infer(const std::vector<float>& data,
                            const std::vector<std::int64_t>& shape) const;
  Result<InferResult> Infer(const float* data, std::size_t count,
                            const std::vector<std::int64_t>& shape) const;

  // Accuracy and latency of the active model on a probe set (for periodic telemetry).
  Result<ProbeReport> Probe(const ProbeSet& probe) const;
  // A model (e.g. active()) on the probe set it was checked with, for periodic telemetry; nullopt
  // when it was prepared without one.
  static Result<std::optional<ProbeReport>> ProbeOwn(const LoadedModel& model);

  std::shared_ptr<const LoadedModel> active() const;
  // The active variant's spec, or nullopt before the first install.
  std::optional<VariantSpec> active_spec() const;

  static const VariantSpec& SpecOf(const LoadedModel& model);

  // Whether the LibTorch module has been opened by this runtime.
  bool backend_loaded() const;

 private:
  // The backend, opened on first call; "runtime_unavailable" when the module cannot be opened.
  Result<RuntimeBackend*> Backend() const;

  RuntimeOptions options_;
  mutable std::mutex mu_;  // guards active_ (the pointer, not the model) and backend_
  std::shared_ptr<const LoadedModel> active_;
  mutable RuntimeBackend* backend_ = nullptr;  // process lifetime, not owned
};

}  // namespace edgeprune::agent
