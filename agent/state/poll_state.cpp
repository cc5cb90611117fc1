// The poll and serve states (the heartbeat, telemetry, the event flush), the heartbeat keep-alive
// and the registration of every state.
#include <malloc.h>

#include "agent/profile/measure.hpp"
#include "agent/state/states.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

class PollState : public StateHandler {
 public:
  explicit PollState(AgentContext& ctx) : ctx_(ctx) {}

  StepResult Run() override {
    if (!ctx_.identity) return {Event::kIdentityRejected, {}, "no identity"};
    if (RenewalDue(*ctx_.identity, ctx_.now_s())) return {Event::kRenewDue, {}, "certificate at 2/3 of its life"};
    auto api = ctx_.Api();
    if (!api.ok()) return {Event::kFailed, {}, api.error().ToString()};
    wire::Heartbeat hb;
    hb.agent_state = StateName(ctx_.current);
    hb.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now() - ctx_.started)
                      .count();
    hb.rss_bytes = SelfRssBytes();
    hb.installed_variant_id = ctx_.installed_variant;
    auto resp = (*api)->Heartbeat(hb);
    if (!resp.ok()) {
      Event e = EventForCallError(resp.error());
      if (e == Event::kIdentityRejected) ctx_.identity_rejected = true;
      return {e, {}, resp.error().ToString()};
    }
    ctx_.last_heartbeat = *resp;
    ctx_.last_heartbeat_at = std::chrono::steady_clock::now();
    const auto wait = ctx_.jitter.Jitter(std::chrono::seconds(resp->heartbeat_interval_s), 0.1);
    const auto& desired = resp->desired_state.variant_id;
    if (desired && desired != ctx_.installed_variant && !ctx_.Refused(*desired))
      return {Event::kUpdateAvailable, wait, "variant " + *desired};
    return {Event::kDone, wait, ""};
  }

 private:
  AgentContext& ctx_;
};

class ServeState : public StateHandler {
 public:
  ServeState(AgentContext& ctx, std::unique_ptr<StateHandler> heartbeat)
      : ctx_(ctx), heartbeat_(std::move(heartbeat)) {}

  StepResult Run() override {
    const auto now = std::chrono::steady_clock::now();
    if (ctx_.serving && now >= next_tick_) {
      next_tick_ = now + ctx_.serving->telemetry_interval();
      const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      auto sent = ctx_.serving->TelemetryTick(now_ms);
      if (!sent.ok()) {
        // The report is queued; it goes out with a later tick.
        log::Get("telemetry")->warn("telemetry not sent: {}", sent.error().ToString());
      }
      // Each local API I/O thread allocates from its own glibc malloc arena, and the pages its
      // requests and forwards freed stay resident there (1–11 MiB, varying from run to run,
      // serving a small ResNet; docs/benchmarks.md). Once per telemetry interval (after the
      // probe pass, which frees a batch of its own) they go back to the OS.
      malloc_trim(0);
    }
    // Variant events the server did not record yet (it was unreachable) go out again.
    ctx_.FlushReports();
    return heartbeat_->Run();
  }

 private:
  AgentContext& ctx_;
  std::unique_ptr<StateHandler> heartbeat_;
  std::chrono::steady_clock::time_point next_tick_{};
};

}  // namespace

std::unique_ptr<StateHandler> MakePollState(AgentContext& ctx) {
  return std::make_unique<PollState>(ctx);
}

std::unique_ptr<StateHandler> MakeServeState(AgentContext& ctx,
                                             std::unique_ptr<StateHandler> heartbeat) {
  return std::make_unique<ServeState>(ctx, std::move(heartbeat));
}

std::function<std::chrono::milliseconds()> MakeHeartbeatKeepAlive(AgentContext& ctx) {
  return [&ctx, heartbeat = std::shared_ptr<StateHandler>(
                    MakePollState(ctx))]() -> std::chrono::milliseconds {
    std::chrono::milliseconds interval =
        ctx.last_heartbeat ? std::chrono::seconds(ctx.last_heartbeat->heartbeat_interval_s)
                           : std::chrono::milliseconds(ctx.settings.heartbeat_interval);
    if (interval.count() <= 0) return std::chrono::milliseconds(1000);
    const auto since = std::chrono::steady_clock::now() - ctx.last_heartbeat_at;
    if (since < interval) return std::chrono::ceil<std::chrono::milliseconds>(interval - since);
    const StepResult r = heartbeat->Run();
    if (r.event == Event::kFailed) {
      log::Get("agent")->warn("heartbeat while in {} failed: {}", StateName(ctx.current), r.detail);
    }
    return interval;
  };
}

void RegisterStates(Machine& machine, AgentContext& ctx,
                    std::function<std::unique_ptr<StateHandler>()> heartbeat) {
  machine.Register(StateId::kEnroll, MakeEnrollState(ctx));
  machine.Register(StateId::kProfile, MakeProfileState(ctx));
  machine.Register(StateId::kRenew, MakeRenewState(ctx));
  machine.Register(StateId::kDownload, MakeDownloadState(ctx));
  machine.Register(StateId::kVerify, MakeVerifyState(ctx));
  machine.Register(StateId::kInstall, MakeInstallState(ctx));
  for (StateId id : {StateId::kPoll, StateId::kServe}) {
    machine.Register(id, MakeServeState(ctx, heartbeat ? heartbeat() : MakePollState(ctx)));
  }
  if (heartbeat) return;
  // Download, verify and install do not heartbeat, and a download may be retried in place for a
  // long time (payload 5xx, connection failures, backoff up to its cap) or be slowed down by the
  // rate cap: while the machine waits in those states, and while a rate-capped download waits
  // between its chunks (ctx.keepalive), the heartbeat keeps its interval.
  ctx.keepalive->tick = MakeHeartbeatKeepAlive(ctx);
  machine.SetKeepAlive({StateId::kDownload, StateId::kVerify, StateId::kInstall},
                       ctx.keepalive->tick);
}

}  // namespace edgeprune::agent
