// The download, verify and install states (states.hpp says how a failure goes on).
#include "agent/state/states.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

constexpr std::chrono::milliseconds kNow{0};

Error NoUpdater() {
  return MakeError(ErrorKind::kFailedPrecondition, "no_updater",
                   "the agent has no variant updater");
}

std::string PendingId(const VariantUpdater& updater) {
  const auto& p = updater.pending();
  return p ? p->manifest.variant_id : "";
}

class DownloadState : public StateHandler {
 public:
  explicit DownloadState(AgentContext& ctx) : ctx_(ctx) {}
  StepResult Run() override {
    if (!ctx_.updater) return {Event::kFailed, kNow, NoUpdater().ToString()};
    auto desired = ctx_.DesiredVariant();
    if (!desired || ctx_.Refused(*desired)) {
      // The assignment was withdrawn, or became a variant refused for good, while we waited.
      ctx_.updater->Abandon();
      return {Event::kAbandoned, kNow, "nothing to download"};
    }
    // Downloads happen only once enrolled: the desired variant comes from an mTLS poll.
    const std::string device_id = ctx_.identity ? ctx_.identity->device_id : "";
    auto st = ctx_.updater->Download(*desired, device_id);
    if (!st.ok()) return UpdateStepFailed(ctx_, *desired, st.error(), "refused");
    return {Event::kDone, kNow, "downloaded " + *desired};
  }

 private:
  AgentContext& ctx_;
};

class VerifyState : public StateHandler {
 public:
  explicit VerifyState(AgentContext& ctx) : ctx_(ctx) {}
  StepResult Run() override {
    if (!ctx_.updater || !ctx_.updater->pending())
      return {Event::kAbandoned, kNow, "nothing to verify"};
    const auto id = PendingId(*ctx_.updater);
    // The bytes and the manifest's description of them first: a failure there is the variant
    // as sent being refused; only then the model itself, whose failure is a failed check.
    if (auto st = ctx_.updater->CheckPayload(); !st.ok()) {
      return UpdateStepFailed(ctx_, id, st.error(), "refused");
    }
    if (auto st = ctx_.updater->CheckModel(); !st.ok()) {
      return UpdateStepFailed(ctx_, id, st.error(), "check_failed");
    }
    return {Event::kDone, kNow, "verified " + id};
  }

 private:
  AgentContext& ctx_;
};

class InstallState : public StateHandler {
 public:
  explicit InstallState(AgentContext& ctx) : ctx_(ctx) {}
  StepResult Run() override {
    if (!ctx_.updater || !ctx_.updater->pending() || !ctx_.updater->pending()->model) {
      return {Event::kAbandoned, kNow, "nothing to install"};
    }
    const auto id = PendingId(*ctx_.updater);
    auto installed = ctx_.updater->Install();
    if (!installed.ok()) return UpdateStepFailed(ctx_, id, installed.error(), "refused");
    ctx_.update.last_error.clear();
    ctx_.update.integrity_failures.erase(installed->variant_id);
    ctx_.Report(installed->variant_id, "installed",
                "version " + std::to_string(installed->version));
    return {Event::kDone, kNow,
            "serving " + installed->variant_id + " v" + std::to_string(installed->version)};
  }

 private:
  AgentContext& ctx_;
};

}  // namespace

StepResult UpdateStepFailed(AgentContext& ctx, const std::string& variant, const Error& e,
                            const char* refusal_event) {
  auto log = log::Get("agent");
  auto abandon = [&ctx] {
    if (ctx.updater) ctx.updater->Abandon();
  };
  ctx.update.last_error = e.ToString();
  // Without a variant there is nothing to refuse or report: retry the step.
  if (variant.empty() || e.retry == Retry::kTransient) return {Event::kFailed, kNow, e.ToString()};
  if (e.retry == Retry::kPermanent && e.kind == ErrorKind::kNotFound) {
    // The server no longer offers it. Retrying in place would never end: the desired variant only
    // changes with a heartbeat, which this state does not send. Back to serving; the next
    // heartbeat says what is wanted.
    abandon();
    log->warn("variant {} is no longer offered: {}", variant, e.message);
    return {Event::kAbandoned, kNow, "not offered: " + variant};
  }
  if (e.retry == Retry::kLimited) {
    // The downloader/verifier already deleted the bad bytes, so a retry starts from byte 0.
    const int attempt = ++ctx.update.integrity_failures[variant];
    const int limit = ctx.update.max_integrity_attempts;
    const bool final_refusal = attempt >= limit;
    abandon();
    const std::string reason = e.code + ": " + e.message + " (attempt " + std::to_string(attempt) +
                               " of " + std::to_string(limit) +
                               (final_refusal ? ", refused for good)" : ", retrying)");
    log->error("variant {} payload refused: {}", variant, reason);
    ctx.Report(variant, "refused", reason);
    if (!final_refusal) return {Event::kFailed, kNow, reason};
    ctx.update.refused.insert(variant);
    return {Event::kAbandoned, kNow, "refused: " + e.code};
  }
  ctx.update.refused.insert(variant);
  abandon();
  log->error("variant {} refused for good: {}", variant, e.ToString());
  ctx.Report(variant, refusal_event, e.code + ": " + e.message);
  return {Event::kAbandoned, kNow, "refused: " + e.code};
}

std::unique_ptr<StateHandler> MakeDownloadState(AgentContext& ctx) {
  return std::make_unique<DownloadState>(ctx);
}
std::unique_ptr<StateHandler> MakeVerifyState(AgentContext& ctx) {
  return std::make_unique<VerifyState>(ctx);
}
std::unique_ptr<StateHandler> MakeInstallState(AgentContext& ctx) {
  return std::make_unique<InstallState>(ctx);
}

}  // namespace edgeprune::agent
