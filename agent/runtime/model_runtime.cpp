#include "agent/runtime/runtime.hpp"

#include <chrono>
#include <cmath>
#include <utility>

#include "agent/runtime/backend.hpp"
#include "agent/runtime/latency_stats.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {

struct LoadedModel {
  VariantSpec spec;
  RuntimeBackend* backend = nullptr;    // process lifetime
  std::unique_ptr<BackendModel> impl;  // the module's model; forwards may run concurrently
  // The probe set it was checked with, measured again for telemetry while it is active: the
  // variant's own (shipped with it) or the agent's local one; null when none applied.
  std::shared_ptr<const ProbeSet> probe;
};

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t Elements(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

}  // namespace

Status ModelRuntime::CheckSpec(const VariantSpec& spec) {
  // The spec comes from a signed manifest: it will be the same next time.
  auto bad = [&](const std::string& why) {
    return PermanentError(ErrorKind::kInvalidArgument, "invalid_variant_spec",
                          "variant " + spec.variant_id + ": " + why);
  };
  if (spec.input_shape.empty() || spec.input_shape[0] != 1) return bad("input shape must start with 1");
  for (auto d : spec.input_shape) {
    if (d < 1) return bad("input shape " + ShapeText(spec.input_shape) + " has a non-positive dim");
  }
  if (spec.num_classes < 1) return bad("num_classes must be positive");
  if (spec.normalize_mean.size() != spec.normalize_std.size()) {
    return bad("normalize mean and std differ in length");
  }
  if (!spec.normalize_mean.empty() &&
      (spec.input_shape.size() < 2 ||
       static_cast<std::int64_t>(spec.normalize_mean.size()) != spec.input_shape[1])) {
    return bad("normalize needs one mean/std per input channel");
  }
  for (double s : spec.normalize_std) {
    if (!(s > 0.0)) return bad("normalize std must be positive");
  }
  if (!(spec.accuracy_floor >= 0.0 && spec.accuracy_floor <= 1.0)) {
    return bad("accuracy floor must be in [0, 1]");
  }
  return Ok();
}

namespace {

Result<ProbeReport> RunProbe(const LoadedModel& m, const ProbeSet& probe) {
  if (probe.size() == 0) {
    return MakeError(ErrorKind::kInvalidArgument, "probe_empty", "the probe set holds no samples");
  }
  if (probe.sample_shape != m.spec.input_shape ||
      probe.data.size() != probe.size() * probe.sample_elements()) {
    // The variant's declared input and the probe set are both fixed: a retry cannot fix this.
    return PermanentError(ErrorKind::kFailedPrecondition, "probe_shape_mismatch",
                          "probe samples have shape " + ShapeText(probe.sample_shape) +
                              " but variant " + m.spec.variant_id + " takes " +
                              ShapeText(m.spec.input_shape));
  }
  EP_ASSIGN_OR_RETURN(auto raw, m.backend->RunProbe(*m.impl, probe));
  ProbeReport report;
  report.accuracy = static_cast<double>(raw.correct) / static_cast<double>(probe.size());
  report.latency = QuantilesOf(std::move(raw.latencies_ms));
  return report;
}

}  // namespace

ModelRuntime::ModelRuntime(RuntimeOptions options) : options_(std::move(options)) {}

ModelRuntime::~ModelRuntime() = default;

const VariantSpec& ModelRuntime::SpecOf(const LoadedModel& model) { return model.spec; }

Result<RuntimeBackend*> ModelRuntime::Backend() const {
  {
    std::lock_guard lock(mu_);
    if (backend_ != nullptr) return backend_;
  }
  EP_ASSIGN_OR_RETURN(RuntimeBackend * backend, LoadRuntimeBackend(options_.backend_path));
  std::lock_guard lock(mu_);
  if (backend_ == nullptr) {
    backend->SetThreads(options_.intra_op_threads);
    backend_ = backend;
  }
  return backend_;
}

bool ModelRuntime::backend_loaded() const {
  std::lock_guard lock(mu_);
  return backend_ != nullptr;
}

Result<std::shared_ptr<const LoadedModel>> ModelRuntime::Prepare(
    const VariantSpec& spec, std::shared_ptr<const ProbeSet> probe, CheckReport* report) const {
  EP_RETURN_IF_ERROR(CheckSpec(spec));
  auto backend = Backend();
  if (!backend.ok()) {
    return backend.error().WithContext("variant " + spec.variant_id + " cannot be loaded");
  }
  auto model = std::make_shared<LoadedModel>();
  model->spec = spec;
  model->backend = *backend;
  const auto start = Clock::now();
  EP_ASSIGN_OR_RETURN(model->impl, model->backend->Load(spec, options_.warmup_iterations));
  CheckReport check;
  check.variant_id = spec.variant_id;
  check.load_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (probe != nullptr) {
    EP_ASSIGN_OR_RETURN(auto probed, RunProbe(*model, *probe));
    if (probed.accuracy < spec.accuracy_floor) {
      // Deterministic on the same bytes and probe set.
      return PermanentError(
          ErrorKind::kFailedPrecondition, "probe_accuracy_below_floor",
          "variant " + spec.variant_id + " scored " + std::to_string(probed.accuracy) +
              " on the probe set, below its floor " + std::to_string(spec.accuracy_floor));
    }
    check.probe = probed;
    model->probe = std::move(probe);
  }
  if (report) *report = check;
  return std::shared_ptr<const LoadedModel>(std::move(model));
}

std::shared_ptr<const LoadedModel> ModelRuntime::Activate(std::shared_ptr<const LoadedModel> model) {
  std::lock_guard lock(mu_);
  std::swap(active_, model);
  return model;
}

Result<CheckReport> ModelRuntime::Install(const VariantSpec& spec,
                                          std::shared_ptr<const ProbeSet> probe) {
  CheckReport report;
  EP_ASSIGN_OR_RETURN(auto model, Prepare(spec, std::move(probe), &report));
  auto previous = Activate(std::move(model));
  log::Get("runtime")->info("variant {} active (was {}), loaded in {:.1f} ms", spec.variant_id,
                            previous ? previous->spec.variant_id : "none", report.load_ms);
  return report;
}

std::shared_ptr<const LoadedModel> ModelRuntime::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

std::optional<VariantSpec> ModelRuntime::active_spec() const {
  auto m = active();
  if (!m) return std::nullopt;
  return m->spec;
}

Result<InferResult> ModelRuntime::Infer(const std::vector<float>& data,
                                        const std::vector<std::int64_t>& shape) const {
  return Infer(data.data(), data.size(), shape);
}

Result<InferResult> ModelRuntime::Infer(const float* data, std::size_t count,
                                        const std::vector<std::int64_t>& shape) const {
  auto model = active();  // our own reference: a concurrent swap cannot free it under us
  if (!model) {
    return MakeError(ErrorKind::kUnavailable, "no_active_model", "no model variant is installed yet");
  }
  const auto& spec = model->spec;
  if (shape != spec.input_shape) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_shape",
                     "input shape " + ShapeText(shape) + " does not match the model's " +
                         ShapeText(spec.input_shape));
  }
  if (static_cast<std::int64_t>(count) != Elements(shape)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_shape",
                     "got " + std::to_string(count) + " values for shape " + ShapeText(shape) +
                         " which needs " + std::to_string(Elements(shape)));
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_input",
                       "value at index " + std::to_string(i) + " is not a finite number");
    }
  }
  // Inputs come in the data set's raw scale (images in [0, 1]); the variant's manifest says how
  // it wants them normalized, so applications need not know (and a swap cannot change) it.
  std::vector<float> normalized;
  const float* input_data = data;
  if (!spec.normalize_mean.empty()) {
    // Layout [N, C, ...]: element i belongs to channel (i / plane) % C.
    const std::size_t channels = spec.normalize_mean.size();
    const std::size_t plane = count / (static_cast<std::size_t>(shape[0]) * channels);
    normalized.resize(count);
    for (std::size_t start = 0, c = 0; start < count; start += plane, c = (c + 1) % channels) {
      const float mean = static_cast<float>(spec.normalize_mean[c]);
      const float inv_std = static_cast<float>(1.0 / spec.normalize_std[c]);
      for (std::size_t i = start; i < start + plane; ++i) normalized[i] = (data[i] - mean) * inv_std;
    }
    input_data = normalized.data();
  }
  InferResult r;
  r.scores.resize(static_cast<std::size_t>(spec.num_classes));
  const auto t0 = Clock::now();
  EP_RETURN_IF_ERROR(model->backend->Forward(*model->impl, input_data, r.scores.data()));
  const auto t1 = Clock::now();
  r.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
  r.variant_id = spec.variant_id;
  r.class_index = 0;
  for (std::int64_t c = 1; c < spec.num_classes; ++c) {
    if (r.scores[c] > r.scores[r.class_index]) r.class_index = c;
  }
  return r;
}

Result<ProbeReport> ModelRuntime::Probe(const ProbeSet& probe) const {
  auto model = active();
  if (!model) {
    return MakeError(ErrorKind::kUnavailable, "no_active_model", "no model variant is installed yet");
  }
  return RunProbe(*model, probe);
}

Result<std::optional<ProbeReport>> ModelRuntime::ProbeOwn(const LoadedModel& model) {
  if (!model.probe) return std::optional<ProbeReport>();
  EP_ASSIGN_OR_RETURN(auto report, RunProbe(model, *model.probe));
  return std::optional<ProbeReport>(std::move(report));
}

}  // namespace edgeprune::agent
