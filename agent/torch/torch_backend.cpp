// The LibTorch backend of the agent's runtime (backend.hpp), and the module's one exported
// symbol. Everything here is compiled with hidden visibility; only the factory is visible.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "agent/runtime/backend.hpp"
#include "agent/runtime/runtime.hpp"
#include "agent/torch/microbench.hpp"
#include "common/torch/operator_policy.hpp"

namespace edgeprune::agent::torch_module {
namespace {

using Clock = std::chrono::steady_clock;

struct TorchModel final : BackendModel {
  VariantSpec spec;
  mutable torch::jit::Module module;  // forward() is non-const; concurrent forwards are safe
};

const TorchModel& Cast(const BackendModel& m) { return static_cast<const TorchModel&>(m); }

// Runs one forward and returns the output as a float32 [1, num_classes] tensor. Its errors are
// permanent: the same model on the same input fails the same way, so a variant that fails its
// check with them is refused rather than retried.
Result<at::Tensor> RunForward(const TorchModel& m, const at::Tensor& input) {
  try {
    c10::InferenceMode guard;
    auto out = m.module.forward({input});
    if (!out.isTensor()) {
      return PermanentError(
          ErrorKind::kFailedPrecondition, "model_output_invalid",
          "variant " + m.spec.variant_id + " returned " + out.tagKind() + ", not a tensor");
    }
    auto t = out.toTensor();
    const std::vector<std::int64_t> want{1, m.spec.num_classes};
    if (t.sizes().vec() != want) {
      return PermanentError(ErrorKind::kFailedPrecondition, "model_output_invalid",
                            "variant " + m.spec.variant_id + " returned shape " +
                                ShapeText(t.sizes().vec()) + ", expected " + ShapeText(want));
    }
    return t.to(at::kFloat).contiguous();
  } catch (const std::exception& e) {
    return PermanentError(ErrorKind::kInternal, "inference_failed",
                          "variant " + m.spec.variant_id + ": forward failed: " + e.what());
  }
}

// The probe images normalized the way this variant expects: [N, C, H, W].
at::Tensor ProbeTensor(const ProbeSet& probe, const VariantSpec& spec) {
  std::vector<std::int64_t> sizes = spec.input_shape;
  sizes[0] = static_cast<std::int64_t>(probe.size());
  auto t = torch::from_blob(const_cast<float*>(probe.data.data()), sizes, at::kFloat).clone();
  if (!spec.normalize_mean.empty()) {
    std::vector<std::int64_t> per_channel(sizes.size(), 1);
    per_channel[1] = sizes[1];
    auto mean = torch::tensor(spec.normalize_mean, at::kDouble).to(at::kFloat).view(per_channel);
    auto std = torch::tensor(spec.normalize_std, at::kDouble).to(at::kFloat).view(per_channel);
    t = (t - mean) / std;
  }
  return t;
}

class TorchBackend final : public RuntimeBackend {
 public:
  void SetThreads(int threads) override {
    if (threads > 0) at::set_num_threads(threads);
  }

  Result<std::unique_ptr<BackendModel>> Load(const VariantSpec& spec, int warmup) override {
    auto model = std::make_unique<TorchModel>();
    model->spec = spec;
    // The server signed this variant, but a stolen signing key must not mean code execution on
    // every gateway: the operator allow-list is checked before loading (which would run any
    // __setstate__) and before the first forward.
    // Load refusals are permanent: the bytes are signed and will be the same next time.
    auto refused = [&](const model_policy::Refusal& r) {
      if (r.code == "forbidden_operator") {
        return PermanentError(ErrorKind::kFailedPrecondition, r.code,
                              "variant " + spec.variant_id + ": " + r.message);
      }
      return PermanentError(
          ErrorKind::kFailedPrecondition, "model_load_failed",
          "variant " + spec.variant_id + ": cannot load " + spec.path + ": " + r.message);
    };
    if (auto refusal = model_policy::CheckArchive(spec.path)) return refused(*refusal);
    try {
      model->module = torch::jit::load(spec.path, at::kCPU);
      model->module.eval();
      if (auto refusal = model_policy::FindForbiddenOperator(model->module)) {
        return refused(*refusal);
      }
    } catch (const std::exception& e) {
      std::string what = e.what();
      if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
      return PermanentError(
          ErrorKind::kFailedPrecondition, "model_load_failed",
          "variant " + spec.variant_id + ": cannot load " + spec.path + ": " + what);
    }
    at::Tensor zeros;
    {
      c10::InferenceMode guard;
      zeros = torch::zeros(spec.input_shape, at::kFloat);
    }
    for (int i = 0; i < std::max(1, warmup); ++i) {
      auto out = RunForward(*model, zeros);
      if (!out.ok()) return out.error();
      if (!torch::isfinite(*out).all().item<bool>()) {
        return PermanentError(ErrorKind::kFailedPrecondition, "model_output_invalid",
                              "variant " + spec.variant_id + " returned non-finite scores");
      }
    }
    return std::unique_ptr<BackendModel>(std::move(model));
  }

  Status Forward(const BackendModel& model, const float* input, float* scores) const override {
    const auto& m = Cast(model);
    at::Tensor in;
    {
      c10::InferenceMode guard;
      in = torch::from_blob(const_cast<float*>(input), m.spec.input_shape, at::kFloat);
    }
    EP_ASSIGN_OR_RETURN(auto out, RunForward(m, in));
    std::memcpy(scores, out.data_ptr<float>(),
                static_cast<std::size_t>(m.spec.num_classes) * sizeof(float));
    return Ok();
  }

  Result<BackendProbe> RunProbe(const BackendModel& model, const ProbeSet& probe) const override {
    const auto& m = Cast(model);
    at::Tensor all;
    try {
      c10::InferenceMode guard;
      all = ProbeTensor(probe, m.spec);
    } catch (const std::exception& e) {
      return MakeError(ErrorKind::kInternal, "probe_failed",
                       std::string("preparing probe: ") + e.what());
    }
    BackendProbe out;
    out.latencies_ms.reserve(probe.size());
    for (std::size_t i = 0; i < probe.size(); ++i) {
      at::Tensor input;
      {
        c10::InferenceMode guard;
        input = all.narrow(0, static_cast<std::int64_t>(i), 1);
      }
      auto t0 = Clock::now();
      EP_ASSIGN_OR_RETURN(auto scores, RunForward(m, input));
      out.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (scores.argmax(1).item<std::int64_t>() == probe.labels[i]) ++out.correct;
    }
    return out;
  }

  Result<wire::Microbench> RunMicrobench(const MicrobenchOptions& options) override {
    return torch_module::RunMicrobench(options);
  }

  std::string TorchVersion() const override { return torch_module::TorchVersion(); }
};

}  // namespace
}  // namespace edgeprune::agent::torch_module

extern "C" __attribute__((visibility("default"))) edgeprune::agent::RuntimeBackend*
edgeprune_agent_torch_backend(int abi_version) {
  if (abi_version != edgeprune::agent::kBackendAbiVersion) return nullptr;
  // Process lifetime: models hold code of this module, which is never unloaded.
  static auto* backend = new edgeprune::agent::torch_module::TorchBackend();
  return backend;
}
