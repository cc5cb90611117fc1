#include "server/api/agent_routes.hpp"

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/profile.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {

using http::Auth;
using http::Verb;

constexpr std::size_t kMaxAgentBody = 64 * 1024;

Result<boost::json::object> Body(const http::RequestContext& ctx) {
  if (ctx.body.size() > kMaxAgentBody) {
    return MakeError(ErrorKind::kPayloadTooLarge, "payload_too_large",
                     "request body is " + std::to_string(ctx.body.size()) +
                         " bytes, the limit is " + std::to_string(kMaxAgentBody));
  }
  return json::ParseObject(ctx.body);
}

// Seconds to wait before the next enrollment attempt under key, 0 when it may go now.
std::int64_t EnrollWait(const fleet::FleetService& fleet, const std::string& key) {
  if (!fleet.enroll_limiter) return 0;
  const std::int64_t wait = fleet.enroll_limiter->Take(key);
  if (wait > 0 && fleet.metrics) fleet.metrics->enrollments_denied->Increment();
  return wait;
}

struct AgentServices {
  std::shared_ptr<fleet::FleetService> fleet;
  DesiredVariantFn desired_variant;
};

Result<http::Response> Enroll(const AgentServices& a, const http::RequestContext& ctx) {
  // Anonymous and costly (a CSR check, a transaction): bounded per client
  // address before anything is parsed.
  if (auto wait = EnrollWait(*a.fleet, "addr:" + ctx.remote_address)) {
    return http::TooManyRequests(
        "enrollment_rate_limited",
        "too many enrollment attempts from this address", wait);
  }
  auto body = Body(ctx);
  auto req = body.ok() ? wire::EnrollRequestFromJson(*body)
                       : Result<wire::EnrollRequest>(body.error());
  if (!req.ok()) {
    if (a.fleet->metrics) a.fleet->metrics->enrollments_denied->Increment();
    return req.error();
  }
  // ... and per presented token, so one leaked many-use token cannot mint
  // devices at full speed from many addresses.
  const std::string token_key = "token:" + crypto::Sha256Hex(req->token);
  if (auto wait = EnrollWait(*a.fleet, token_key)) {
    return http::TooManyRequests(
        "enrollment_rate_limited",
        "too many enrollment attempts with this token", wait);
  }
  auto grant = a.fleet->registry->Enroll(*req);
  if (a.fleet->metrics) {
    (grant.ok() ? a.fleet->metrics->enrollments_ok
                : a.fleet->metrics->enrollments_denied)
        ->Increment();
  }
  if (!grant.ok()) return grant.error();
  return http::JsonResponse(wire::ToJson(*grant), http::HttpStatus::created);
}

Result<http::Response> Renew(const AgentServices& a, const http::RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto body, Body(ctx));
  EP_ASSIGN_OR_RETURN(auto req, wire::RenewRequestFromJson(body));
  fleet::RenewalRateLimited limited;
  auto grant = a.fleet->registry->Renew(
      ctx.principal.id, req.csr_pem,
      ctx.peer_certificate ? ctx.peer_certificate->public_key_sha256 : "",
      &limited);
  if (!grant.ok() && grant.error().code == "renewal_rate_limited") {
    return http::TooManyRequests(grant.error().code, grant.error().message,
                                 limited.retry_after_s);
  }
  if (!grant.ok()) return grant.error();
  return http::JsonResponse(wire::ToJson(*grant));
}

Result<http::Response> Profile(const AgentServices& a, const http::RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto profile, wire::ParseProfile(ctx.body, kMaxAgentBody));
  EP_ASSIGN_OR_RETURN(auto budget,
                      a.fleet->registry->RecordProfile(ctx.principal.id, profile));
  return http::JsonResponse(boost::json::object{
      {"device_id", ctx.principal.id}, {"budget", wire::ToJson(budget)}});
}

Result<http::Response> Heartbeat(const AgentServices& a, const http::RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto body, Body(ctx));
  EP_ASSIGN_OR_RETURN(auto hb, wire::HeartbeatFromJson(body));
  a.fleet->heartbeats->Record(ctx.principal.id, hb);
  if (a.fleet->metrics) a.fleet->metrics->heartbeats->Increment();
  wire::HeartbeatResponse r;
  if (a.desired_variant) r.desired_state.variant_id = a.desired_variant(ctx.principal.id);
  r.heartbeat_interval_s = a.fleet->heartbeats->interval().count();
  r.server_time = a.fleet->clock->NowS();
  return http::JsonResponse(wire::ToJson(r));
}

}  // namespace

std::vector<http::Route> AgentRoutes(std::shared_ptr<fleet::FleetService> fleet,
                                     DesiredVariantFn desired_variant) {
  const AgentServices a{std::move(fleet), std::move(desired_variant)};
  // clang-format off
  return {
      {Verb::post, "/agent/v1/enroll",    Bind<Enroll>(a),    Auth::kPublic, "agent_enroll"},
      {Verb::post, "/agent/v1/renew",     Bind<Renew>(a),     Auth::kDevice, "agent_renew"},
      {Verb::put,  "/agent/v1/profile",   Bind<Profile>(a),   Auth::kDevice, "agent_profile"},
      {Verb::post, "/agent/v1/heartbeat", Bind<Heartbeat>(a), Auth::kDevice, "agent_heartbeat"},
  };
  // clang-format on
}

}  // namespace edgeprune::api
