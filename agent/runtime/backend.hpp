#pragma once
// RuntimeBackend: the LibTorch half of the agent's runtime, behind a torch-free interface. It is
// built as a separate module (agent/torch/ → edgeprune_agent_torch.so) that the agent opens with
// dlopen the first time it needs LibTorch (a variant to load, or the `microbench` command), so an
// agent without a model never maps LibTorch and its ~300 shared libraries. ModelRuntime
// (runtime.hpp) owns the contract (spec and input checks, normalization, hot swap); the backend
// only loads TorchScript, runs forwards and the microbenchmarks.
//
// ABI: the module and the agent are built together from one tree with one compiler and one
// libstdc++, so C++ types (std::string, std::vector, Result) cross the boundary. The module
// exports one extern "C" symbol, kBackendFactorySymbol, of type BackendFactory; it returns null
// when the caller's kBackendAbiVersion differs from its own. A loaded module is never unloaded:
// models and the backend live as long as the process.
//
// Thread-safety: Load, Forward and RunProbe may be called concurrently (a model's forward is
// safe to run from several threads); SetThreads and RunMicrobench change LibTorch's process-wide
// thread count and must not race other calls.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/runtime/probe_set.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

struct VariantSpec;

// "[1, 1, 28, 28]": a shape as error messages on both sides of the module boundary print it.
inline std::string ShapeText(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A loaded TorchScript module; only the backend knows what is inside.
class BackendModel {
 public:
  virtual ~BackendModel() = default;
};

struct MicrobenchOptions {
  std::int64_t threads = 1;
  std::int64_t total_ms = 1000;
};

// Probe results before they become quantiles (latency_stats.hpp lives on the agent side).
struct BackendProbe {
  std::size_t correct = 0;
  std::vector<double> latencies_ms;  // one batch-1 forward per sample
};

class RuntimeBackend {
 public:
  virtual ~RuntimeBackend() = default;

  // LibTorch's process-wide intra-op thread count (> 0).
  virtual void SetThreads(int threads) = 0;

  // Loads spec.path on the CPU and runs `warmup` (at least 1) forwards on zeros; each must give a
  // finite [1, num_classes] tensor. spec has passed ModelRuntime's checks. Errors:
  // "model_load_failed", "model_output_invalid", "inference_failed".
  virtual Result<std::unique_ptr<BackendModel>> Load(const VariantSpec& spec, int warmup) = 0;

  // One forward at batch 1: input holds the (normalized) values of spec.input_shape; writes
  // spec.num_classes float32 scores to `scores`. "model_output_invalid", "inference_failed".
  virtual Status Forward(const BackendModel& model, const float* input, float* scores) const = 0;

  // Every probe sample through the model, one batch-1 forward each, normalized with the spec.
  // The probe's sample shape matches the spec (checked by the caller). "probe_failed",
  // "inference_failed", "model_output_invalid".
  virtual Result<BackendProbe> RunProbe(const BackendModel& model, const ProbeSet& probe) const = 0;

  // Matmul, convolution, dispatch overhead and memory bandwidth; "microbench_failed".
  virtual Result<wire::Microbench> RunMicrobench(const MicrobenchOptions& options) = 0;

  // "1.13.1": the LibTorch the module was built against.
  virtual std::string TorchVersion() const = 0;
};

inline constexpr int kBackendAbiVersion = 1;
inline constexpr const char* kBackendFactorySymbol = "edgeprune_agent_torch_backend";
inline constexpr const char* kBackendModuleName = "edgeprune_agent_torch.so";
// The module's factory: a process-lifetime backend, or null on an ABI version mismatch.
using BackendFactory = RuntimeBackend* (*)(int abi_version);

// The backend from the module at `path` (empty: kBackendModuleName next to this executable),
// opened on first use and kept for the process lifetime; later calls with the same path return
// the same backend. A module that cannot be opened is not remembered, so a later call tries
// again. Error "runtime_unavailable" (kUnavailable) naming the path and dlerror().
// Thread-safety: may be called from any thread.
Result<RuntimeBackend*> LoadRuntimeBackend(const std::string& path);

// kBackendModuleName in the directory of /proc/self/exe.
std::string DefaultBackendPath();

}  // namespace edgeprune::agent
