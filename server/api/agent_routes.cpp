#include "server/api/agent_routes.hpp"

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/wire/profile.hpp"

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

}  // namespace

std::vector<http::Route> AgentRoutes(std::shared_ptr<fleet::FleetService> fleet,
                                     DesiredVariantFn desired_variant) {
  std::vector<http::Route> routes;

  routes.push_back({Verb::post, "/agent/v1/enroll",
                    [fleet](const http::RequestContext& ctx) -> Result<http::Response> {
                      auto body = Body(ctx);
                      auto req = body.ok() ? wire::EnrollRequestFromJson(*body)
                                           : Result<wire::EnrollRequest>(body.error());
                      if (!req.ok()) {
                        if (fleet->metrics) fleet->metrics->enrollments_denied->Increment();
                        return req.error();
                      }
                      auto grant = fleet->registry->Enroll(*req);
                      if (fleet->metrics) {
                        (grant.ok() ? fleet->metrics->enrollments_ok
                                    : fleet->metrics->enrollments_denied)
                            ->Increment();
                      }
                      if (!grant.ok()) return grant.error();
                      return http::JsonResponse(wire::ToJson(*grant), http::HttpStatus::created);
                    },
                    Auth::kPublic, "agent_enroll"});

  routes.push_back({Verb::post, "/agent/v1/renew",
                    [fleet](const http::RequestContext& ctx) -> Result<http::Response> {
                      EP_ASSIGN_OR_RETURN(auto body, Body(ctx));
                      EP_ASSIGN_OR_RETURN(auto req, wire::RenewRequestFromJson(body));
                      EP_ASSIGN_OR_RETURN(auto grant,
                                          fleet->registry->Renew(ctx.principal.id, req.csr_pem));
                      return http::JsonResponse(wire::ToJson(grant));
                    },
                    Auth::kDevice, "agent_renew"});

  routes.push_back({Verb::put, "/agent/v1/profile",
                    [fleet](const http::RequestContext& ctx) -> Result<http::Response> {
                      EP_ASSIGN_OR_RETURN(auto profile, wire::ParseProfile(ctx.body, kMaxAgentBody));
                      EP_ASSIGN_OR_RETURN(auto budget,
                                          fleet->registry->RecordProfile(ctx.principal.id, profile));
                      return http::JsonResponse(boost::json::object{
                          {"device_id", ctx.principal.id}, {"budget", wire::ToJson(budget)}});
                    },
                    Auth::kDevice, "agent_profile"});

  routes.push_back({Verb::post, "/agent/v1/heartbeat",
                    [fleet, desired_variant](const http::RequestContext& ctx) -> Result<http::Response> {
                      EP_ASSIGN_OR_RETURN(auto body, Body(ctx));
                      EP_ASSIGN_OR_RETURN(auto hb, wire::HeartbeatFromJson(body));
                      fleet->heartbeats->Record(ctx.principal.id, hb);
                      if (fleet->metrics) fleet->metrics->heartbeats->Increment();
                      wire::HeartbeatResponse r;
                      if (desired_variant) r.desired_state.variant_id = desired_variant(ctx.principal.id);
                      r.heartbeat_interval_s = fleet->heartbeats->interval().count();
                      r.server_time = fleet->clock->NowS();
                      return http::JsonResponse(wire::ToJson(r));
                    },
                    Auth::kDevice, "agent_heartbeat"});
  return routes;
}

}  // namespace edgeprune::api
