#include "agent/download/update_states.hpp"

#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

StepResult Failed(UpdateFlow& flow, const std::string& variant, const Error& e) {
  flow.last_error = e.ToString();
  if (e.code == "variant_not_offered") {
    // Retrying in place would never end: the desired variant only changes with a heartbeat,
    // which this state does not send. Back to serving; the next heartbeat says what is wanted.
    flow.updater->Abandon();
    log::Get("agent")->warn("variant {} is no longer offered: {}", variant, e.message);
    return StepResult{Event::kDone, std::chrono::milliseconds(0), "not offered: " + variant};
  }
  if (IsIntegrityFailure(e.code) && !variant.empty()) {
    // The downloader/verifier already deleted the bad bytes, so a retry starts from byte 0.
    const int attempt = ++flow.integrity_failures[variant];
    const bool final_refusal = attempt >= flow.max_integrity_attempts;
    flow.updater->Abandon();
    const std::string reason = e.code + ": " + e.message + " (attempt " + std::to_string(attempt) +
                               " of " + std::to_string(flow.max_integrity_attempts) +
                               (final_refusal ? ", refused for good)" : ", retrying)");
    log::Get("agent")->error("variant {} payload refused: {}", variant, reason);
    flow.Report(variant, "refused", reason);
    if (final_refusal) {
      flow.refused.insert(variant);
      return StepResult{Event::kDone, std::chrono::milliseconds(0), "refused: " + e.code};
    }
    return StepResult{Event::kFailed, std::chrono::milliseconds(0), reason};
  }
  if (IsPermanentRefusal(e.code) && !variant.empty()) {
    flow.refused.insert(variant);
    flow.updater->Abandon();
    log::Get("agent")->error("variant {} refused for good: {}", variant, e.ToString());
    flow.Report(variant, IsCheckFailure(e.code) ? "check_failed" : "refused",
                e.code + ": " + e.message);
    // Nothing to install: pass through verify and install back to serving the current variant.
    return StepResult{Event::kDone, std::chrono::milliseconds(0), "refused: " + e.code};
  }
  return StepResult{Event::kFailed, std::chrono::milliseconds(0), e.ToString()};
}

std::string PendingId(const UpdateFlow& flow) {
  const auto& p = flow.updater->pending();
  return p ? p->manifest.variant_id : "";
}

class DownloadState : public StateHandler {
 public:
  explicit DownloadState(std::shared_ptr<UpdateFlow> flow) : flow_(std::move(flow)) {}
  StepResult Run() override {
    auto desired = flow_->desired_variant ? flow_->desired_variant() : std::nullopt;
    if (!desired || flow_->refused.count(*desired)) {
      flow_->updater->Abandon();
      return {Event::kDone, std::chrono::milliseconds(0), "nothing to download"};
    }
    auto st = flow_->updater->Download(*desired);
    if (!st.ok()) return Failed(*flow_, *desired, st.error());
    return {Event::kDone, std::chrono::milliseconds(0), "downloaded " + *desired};
  }

 private:
  std::shared_ptr<UpdateFlow> flow_;
};

class VerifyState : public StateHandler {
 public:
  explicit VerifyState(std::shared_ptr<UpdateFlow> flow) : flow_(std::move(flow)) {}
  StepResult Run() override {
    if (!flow_->updater->pending()) return {Event::kDone, std::chrono::milliseconds(0), "nothing to verify"};
    const auto id = PendingId(*flow_);
    auto st = flow_->updater->Verify();
    if (!st.ok()) return Failed(*flow_, id, st.error());
    return {Event::kDone, std::chrono::milliseconds(0), "verified " + id};
  }

 private:
  std::shared_ptr<UpdateFlow> flow_;
};

class InstallState : public StateHandler {
 public:
  explicit InstallState(std::shared_ptr<UpdateFlow> flow) : flow_(std::move(flow)) {}
  StepResult Run() override {
    const auto& p = flow_->updater->pending();
    if (!p || !p->model) return {Event::kDone, std::chrono::milliseconds(0), "nothing to install"};
    const auto id = PendingId(*flow_);
    auto installed = flow_->updater->Install();
    if (!installed.ok()) return Failed(*flow_, id, installed.error());
    flow_->last_error.clear();
    flow_->integrity_failures.erase(installed->variant_id);
    flow_->Report(installed->variant_id, "installed",
                  "version " + std::to_string(installed->version));
    return {Event::kDone, std::chrono::milliseconds(0),
            "serving " + installed->variant_id + " v" + std::to_string(installed->version)};
  }

 private:
  std::shared_ptr<UpdateFlow> flow_;
};

}  // namespace

void UpdateFlow::Report(const std::string& variant_id, const std::string& event,
                        const std::string& reason) {
  if (unsent.size() >= kMaxUnsent) {
    log::Get("agent")->warn("dropping the unsent {} event of variant {}",
                            unsent.front().event, unsent.front().variant_id);
    unsent.pop_front();
  }
  unsent.push_back({variant_id, event, reason});
  FlushReports();
}

void UpdateFlow::FlushReports() {
  if (!report) {
    unsent.clear();
    return;
  }
  while (!unsent.empty()) {
    const auto& e = unsent.front();
    if (!report(e.variant_id, e.event, e.reason)) return;  // kept; the next flush retries
    unsent.pop_front();
  }
}

bool IsPermanentRefusal(const std::string& code) {
  static const std::set<std::string> kPermanent = {
      "manifest_unsigned",  "unknown_signing_key",   "bad_signature",
      "manifest_mismatch",  "version_not_newer",     "invalid_field",
      "unknown_field",      "invalid_json",          "manifest_too_large",
      "model_load_failed",  "model_output_invalid",  "probe_accuracy_below_floor",
      "probe_shape_mismatch", "invalid_variant_spec", "invalid_variant_id",
      "inference_failed",   "runtime_unavailable",   "forbidden_operator"};
  return kPermanent.count(code) != 0;
}

bool IsIntegrityFailure(const std::string& code) {
  return code == "payload_digest_mismatch" || code == "payload_size_mismatch";
}

bool IsCheckFailure(const std::string& code) {
  static const std::set<std::string> kCheck = {"model_load_failed", "forbidden_operator",
                                               "model_output_invalid",
                                               "probe_accuracy_below_floor",
                                               "probe_shape_mismatch", "inference_failed",
                                               "runtime_unavailable"};
  return kCheck.count(code) != 0;
}

std::unique_ptr<StateHandler> MakeDownloadState(std::shared_ptr<UpdateFlow> flow) {
  return std::make_unique<DownloadState>(std::move(flow));
}
std::unique_ptr<StateHandler> MakeVerifyState(std::shared_ptr<UpdateFlow> flow) {
  return std::make_unique<VerifyState>(std::move(flow));
}
std::unique_ptr<StateHandler> MakeInstallState(std::shared_ptr<UpdateFlow> flow) {
  return std::make_unique<InstallState>(std::move(flow));
}

}  // namespace edgeprune::agent
