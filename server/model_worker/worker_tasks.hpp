#pragma once
// The model work a worker process does, inside its sandbox: validate an uploaded master (operator
// allow-list, load, one forward, cost) and build a variant (the pruning engine's builder). Every
// failure is a TaskError whose message speaks to the model's owner; LibTorch's own text goes to
// `detail`, which the server logs and never returns.
//
// Thread-safety: one task per process at a time.

#include <functional>
#include <string>
#include <string_view>

#include "edgeprune/common/result.hpp"
#include "server/model_worker/protocol.hpp"

namespace edgeprune::model_worker {

struct TaskError {
  std::string code;
  std::string message;
  std::string detail;
};

template <typename T>
using TaskResult = std::variant<T, TaskError>;

TaskResult<catalog::MasterFacts> ValidateTask(const ValidateRequest& request);

struct BuildCallbacks {
  std::function<void(std::string_view phase, double percent)> progress;
  std::function<void(const std::string& file)> checkpoint;  // a file in the scratch directory
};
TaskResult<catalog::BuildOutcome> BuildTask(const BuildJobRequest& request,
                                             const BuildCallbacks& callbacks);

// LibTorch intra-op threads for this process.
void SetThreads(int threads);

}  // namespace edgeprune::model_worker
