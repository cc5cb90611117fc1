#include "agent/enroll/device_key.hpp"
#include "agent/state/states.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

class RenewState : public StateHandler {
 public:
  explicit RenewState(AgentContext& ctx) : ctx_(ctx) {}

  StepResult Run() override {
    if (!ctx_.identity) return {Event::kIdentityRejected, {}, "no identity to renew"};
    auto csr = MakeCsr(ctx_.identity->key_pem, ctx_.identity->device_id);
    if (!csr.ok()) return {Event::kFailed, {}, csr.error().ToString()};
    auto api = ctx_.Api();
    if (!api.ok()) return {Event::kFailed, {}, api.error().ToString()};
    auto grant = (*api)->Renew(*csr);
    if (!grant.ok()) return {EventForCallError(grant.error()), {}, grant.error().ToString()};
    auto info = InspectCertificate(grant->certificate_pem);
    if (!info.ok()) return {Event::kFailed, {}, info.error().ToString()};
    if (auto s = ctx_.dir.SaveCertificate(grant->certificate_pem, info->not_before, info->not_after);
        !s.ok()) {
      return {Event::kFailed, {}, s.error().ToString()};
    }
    ctx_.identity->certificate_pem = grant->certificate_pem;
    ctx_.identity->not_before = info->not_before;
    ctx_.identity->not_after = info->not_after;
    ctx_.ResetApi();  // the next call presents the new certificate
    log::Get("agent")->info("certificate renewed; valid until {}", info->not_after);
    return {Event::kDone, {}, "renewed"};
  }

 private:
  AgentContext& ctx_;
};

}  // namespace

bool RenewalDue(const Identity& id, std::int64_t now_s) {
  const std::int64_t lifetime = id.not_after - id.not_before;
  return lifetime > 0 && now_s >= id.not_before + lifetime * 2 / 3;
}

std::unique_ptr<StateHandler> MakeRenewState(AgentContext& ctx) {
  return std::make_unique<RenewState>(ctx);
}

}  // namespace edgeprune::agent
