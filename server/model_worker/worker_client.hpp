#pragma once
// The server's side of the model worker: every piece of work that runs an uploaded model (upload
// validation, variant builds) is handed to a fresh `edgeprune-server model-worker` process. The
// client gives it a private scratch directory holding a copy of the model, a clean environment
// and no descriptor but its three pipes, waits for its answer with a wall-clock deadline (then
// SIGKILL), and turns every way it can end into an Error for that one request or job:
//   model_timeout         the deadline passed
//   model_resource_limit  out of memory or CPU time (limits set by the worker's sandbox)
//   model_crashed         it died of a signal of its own
//   forbidden_operator, invalid_model, ...  what the worker reported
// LibTorch's text (the worker's `detail`) and the worker's stderr are logged, never returned.
//
// Thread-safety: thread-safe; each call runs its own process.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/model_worker/variant_build.hpp"
#include "server/catalog/variant_build.hpp"

namespace edgeprune::model_worker {

struct WorkerOptions {
  std::string executable;    // the edgeprune-server binary
  std::string scratch_root;  // parent of the per-run scratch directories (created 0700)
  std::uint64_t memory_bytes = std::uint64_t{8} << 30;
  std::uint64_t file_size_bytes = std::uint64_t{4} << 30;
  std::chrono::seconds validate_timeout{120};
  std::chrono::seconds build_timeout{7200};
};

class ModelWorkerClient {
 public:
  explicit ModelWorkerClient(WorkerOptions options) : options_(std::move(options)) {}

  // Validates an uploaded master at `path` in a worker (allow-list, load, forward, cost).
  catalog::ValidateMasterFn Validator() const;
  // Builds variants in workers with the engine settings `build` (LibTorch threads:
  // build.threads, at least 1). Validation uses one thread.
  catalog::BuildVariantFn Builder(catalog::VariantBuildOptions build) const;

 private:
  WorkerOptions options_;
};

}  // namespace edgeprune::model_worker
