#include "server/model_worker/worker_tasks.hpp"

#include <torch/script.h>

#include <fstream>
#include <new>

#include "common/torch/operator_policy.hpp"
#include "edgeprune/common/fs.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/torchscript.hpp"

namespace edgeprune::model_worker {
namespace {

bool IsOutOfMemory(const std::string& what) {
  return what.find("can't allocate memory") != std::string::npos ||
         what.find("std::bad_alloc") != std::string::npos;
}

TaskError ResourceLimit(const std::string& detail) {
  return TaskError{"model_resource_limit",
                   "the model needs more memory than a model worker may use", detail};
}

std::vector<std::int64_t> WithoutBatch(const std::vector<std::int64_t>& shape) {
  return shape.empty() ? shape : std::vector<std::int64_t>(shape.begin() + 1, shape.end());
}

// The allow-list before and after loading; the loaded module on success.
TaskResult<torch::jit::Module> LoadChecked(const std::string& file, const std::string& what) {
  if (auto refusal = model_policy::CheckArchive(file)) {
    return TaskError{refusal->code, what + ": " + refusal->message, ""};
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(file, torch::kCPU);
  } catch (const std::bad_alloc& e) {
    return ResourceLimit(e.what());
  } catch (const std::exception& e) {
    if (IsOutOfMemory(e.what())) return ResourceLimit(e.what());
    return TaskError{"invalid_model", what + " is not a TorchScript model this server can load",
                     e.what()};
  }
  if (auto refusal = model_policy::FindForbiddenOperator(module)) {
    return TaskError{refusal->code, what + ": " + refusal->message, ""};
  }
  return module;
}

}  // namespace

void SetThreads(int threads) { models::SetIntraOpThreads(threads); }

TaskResult<catalog::MasterFacts> ValidateTask(const ValidateRequest& request) {
  const std::string what = "the uploaded model";
  auto loaded = LoadChecked(request.model_file, what);
  if (auto* e = std::get_if<TaskError>(&loaded)) return *e;
  auto& module = std::get<torch::jit::Module>(loaded);
  const auto chw = WithoutBatch(request.input_shape);
  // One forward of our own first, so that a model that fails to run gets our sentence and
  // LibTorch's goes to the log; CheckModule's own checks then only produce our sentences.
  try {
    module.eval();
    torch::InferenceMode guard;
    (void)module.forward({torch::zeros(request.input_shape)});
  } catch (const std::bad_alloc& e) {
    return ResourceLimit(e.what());
  } catch (const std::exception& e) {
    if (IsOutOfMemory(e.what())) return ResourceLimit(e.what());
    return TaskError{"invalid_model",
                     what + " does not run on input of shape " +
                         models::ShapeToString(request.input_shape),
                     e.what()};
  }
  try {
    auto check = models::CheckModule(module, chw, what, request.expected_classes);
    if (!check.ok()) return TaskError{check.error().code, check.error().message, ""};
    auto cost = models::EstimateCost(module, chw);
    if (!cost.ok()) {
      return TaskError{"invalid_model", "the cost of " + what + " cannot be measured",
                       cost.error().ToString()};
    }
    catalog::MasterFacts facts;
    facts.num_classes = check->num_classes;
    facts.parameters = (cost->param_bytes + cost->buffer_bytes) / 4;
    facts.macs = cost->macs;
    facts.activation_bytes = cost->peak_activation_bytes;
    return facts;
  } catch (const std::exception& e) {
    if (IsOutOfMemory(e.what())) return ResourceLimit(e.what());
    return TaskError{"invalid_model", "the cost of " + what + " cannot be measured", e.what()};
  }
}

TaskResult<catalog::BuildOutcome> BuildTask(const BuildJobRequest& request,
                                             const BuildCallbacks& callbacks) {
  // The master passed the allow-list at upload; it is checked again here because the build is
  // what runs it longest, and a blob could have been written by something else.
  {
    auto loaded = LoadChecked(request.master_file, "the master");
    if (auto* e = std::get_if<TaskError>(&loaded)) return *e;
  }
  catalog::BuildRequest r;
  r.master_path = request.master_file;
  r.input_shape = request.input_shape;
  r.num_classes = request.num_classes;
  r.dataset = request.dataset;
  r.budget = request.budget;
  r.work_dir = ".";
  r.output_path = request.output_file;
  r.progress = [&](std::string_view phase, double percent) -> Status {
    if (callbacks.progress) callbacks.progress(phase, percent);
    return Ok();
  };
  int checkpoints = 0;
  r.checkpoint = [&](std::string_view bytes) -> Status {
    const std::string file = "checkpoint-" + std::to_string(++checkpoints) + ".bin";
    EP_RETURN_IF_ERROR(fs::WriteFileAtomic(file, bytes, 0600));
    if (callbacks.checkpoint) callbacks.checkpoint(file);
    return Ok();
  };
  if (request.resume_file) {
    auto bytes = fs::ReadFile(*request.resume_file);
    if (bytes.ok()) r.resume = std::move(bytes).value();
  }
  try {
    auto outcome = model_worker::MakeVariantBuilder(request.options)(r);
    if (!outcome.ok()) {
      const auto& e = outcome.error();
      if (IsOutOfMemory(e.message)) return ResourceLimit(e.message);
      // The builder's exception catch-all carries LibTorch's text: logged, not shown.
      if (e.code == "build_failed") {
        return TaskError{e.code, "the variant build failed (the server log has the reason)",
                         e.message};
      }
      return TaskError{e.code, e.message, ""};
    }
    return std::move(outcome).value();
  } catch (const std::bad_alloc& e) {
    return ResourceLimit(e.what());
  } catch (const std::exception& e) {
    if (IsOutOfMemory(e.what())) return ResourceLimit(e.what());
    return TaskError{"build_failed", "the variant build failed (the server log has the reason)",
                     e.what()};
  }
}

}  // namespace edgeprune::model_worker
