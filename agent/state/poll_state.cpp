#include "agent/profile/measure.hpp"
#include "agent/state/states.hpp"

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
    if (desired && desired != ctx_.installed_variant &&
        !(ctx_.refused_variant && ctx_.refused_variant(*desired)))
      return {Event::kUpdateAvailable, wait, "variant " + *desired};
    return {Event::kDone, wait, ""};
  }

 private:
  AgentContext& ctx_;
};

}  // namespace

std::unique_ptr<StateHandler> MakePollState(AgentContext& ctx) {
  return std::make_unique<PollState>(ctx);
}

}  // namespace edgeprune::agent
