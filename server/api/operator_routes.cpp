#include "server/api/operator_routes.hpp"

#include <charconv>

#include "common/http/pagination.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/fields.hpp"
#include "server/api/fleet_authenticator.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {

using http::Auth;
using http::HttpStatus;
using http::RequestContext;
using http::Response;
using http::Verb;
using FleetPtr = std::shared_ptr<fleet::FleetService>;

// The one strict limit parser (http::PageParams): "1e3", "+5" or "10abc" are 400
// invalid_parameter, never a silently truncated number.
Result<int> LimitParam(const RequestContext& ctx, int def, int max) {
  EP_ASSIGN_OR_RETURN(http::PageRequest page, http::PageParams(ctx, def, max));
  return page.limit;
}

std::optional<std::string> Param(const RequestContext& ctx, std::string_view name) {
  auto v = ctx.QueryParam(name);
  if (!v || v->empty()) return std::nullopt;
  return std::string(*v);
}

// Runs a state-changing operation and audits a failure (successes are audited in their
// transaction by the fleet code).
template <typename Fn>
Result<Response> Audited(const FleetPtr& fleet, const RequestContext& ctx, const std::string& action,
                         const std::string& target, Fn&& fn) {
  Result<Response> r = fn();
  if (!r.ok()) {
    const auto kind = r.error().kind;
    const bool denied = kind == ErrorKind::kPermissionDenied || kind == ErrorKind::kUnauthenticated;
    (void)fleet->audit->Record(Actor(ctx), action, target,
                               denied ? fleet::Outcome::kDenied : fleet::Outcome::kFailed,
                               r.error().ToString());
  }
  return r;
}

boost::json::object DeviceView(const FleetPtr& fleet, const fleet::DeviceRecord& d) {
  auto o = fleet::ToJson(d);
  // The newer of this process's heartbeat and the shared table's (flushed by any process): a
  // device heartbeating through another server process is not shown offline here.
  const auto tracked = fleet->heartbeats->Get(d.id);
  const std::int64_t flushed = d.last_seen_ms.value_or(0);
  const fleet::LiveState* live =
      tracked && tracked->last_seen_ms >= flushed ? &*tracked : nullptr;
  const std::int64_t last_seen = live ? live->last_seen_ms : flushed;
  if (d.status == "revoked") {
    o["liveness"] = "revoked";
  } else {
    o["liveness"] = fleet::LivenessName(fleet->heartbeats->LivenessAt(last_seen));
  }
  o["last_seen_ms"] = last_seen > 0 ? boost::json::value(last_seen) : nullptr;
  if (live) {
    o["agent_state"] = live->agent_state;
    o["agent_rss_bytes"] = live->rss_bytes;
    o["agent_uptime_s"] = live->uptime_s;
    o["installed_variant"] =
        live->installed_variant_id ? boost::json::value(*live->installed_variant_id) : nullptr;
  }
  return o;
}

Result<Response> CreateToken(const FleetPtr& fleet, const RequestContext& ctx) {
  return Audited(fleet, ctx, "token.create", "", [&]() -> Result<Response> {
    EP_ASSIGN_OR_RETURN(auto body, json::ParseObject(ctx.body));
    EP_RETURN_IF_ERROR(wire::RejectUnknownKeys(body, {"name", "role"}, "token request"));
    EP_ASSIGN_OR_RETURN(auto name, wire::ReadString(body, "name", 64));
    EP_ASSIGN_OR_RETURN(auto role_name, wire::ReadString(body, "role", 16));
    auto role = http::ParseRole(role_name);
    if (!role) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field 'role' must be admin, operator or viewer");
    }
    EP_ASSIGN_OR_RETURN(auto created, fleet->api_tokens->Create(name, *role, Actor(ctx)));
    return http::JsonResponse(boost::json::object{{"name", created.info.name},
                                                  {"role", http::RoleName(created.info.role)},
                                                  {"token", created.secret}},
                              HttpStatus::created);
  });
}

Result<Response> ListTokens(const FleetPtr& fleet, const RequestContext&) {
  EP_ASSIGN_OR_RETURN(auto tokens, fleet->api_tokens->List());
  boost::json::array items;
  for (const auto& t : tokens) {
    items.push_back(boost::json::object{
        {"name", t.name},
        {"role", http::RoleName(t.role)},
        {"created_at_ms", t.created_at_ms},
        {"revoked_at_ms", t.revoked_at_ms ? boost::json::value(*t.revoked_at_ms) : nullptr}});
  }
  return http::ListResponse(std::move(items));
}

Result<Response> RevokeToken(const FleetPtr& fleet, const RequestContext& ctx) {
  const std::string name(ctx.PathParam("name").value_or(""));
  return Audited(fleet, ctx, "token.revoke", "token:" + name, [&]() -> Result<Response> {
    EP_RETURN_IF_ERROR(fleet->api_tokens->Revoke(name, Actor(ctx)));
    return http::JsonResponse(boost::json::object{{"name", name}, {"revoked", true}});
  });
}

Result<Response> CreateEnrollmentToken(const FleetPtr& fleet, const RequestContext& ctx) {
  return Audited(fleet, ctx, "enrollment_token.create", "", [&]() -> Result<Response> {
    boost::json::object body;
    if (!ctx.body.empty()) {
      EP_ASSIGN_OR_RETURN(body, json::ParseObject(ctx.body));
    }
    EP_ASSIGN_OR_RETURN(auto spec, fleet::EnrollmentTokens::SpecFromJson(body));
    EP_ASSIGN_OR_RETURN(auto created, fleet->enrollment_tokens->Create(spec, Actor(ctx)));
    auto o = fleet::EnrollmentTokens::ToJson(created.info);
    o["token"] = created.secret;
    return http::JsonResponse(o, HttpStatus::created);
  });
}

Result<Response> ListEnrollmentTokens(const FleetPtr& fleet, const RequestContext&) {
  EP_ASSIGN_OR_RETURN(auto tokens, fleet->enrollment_tokens->List());
  boost::json::array items;
  for (const auto& t : tokens) items.push_back(fleet::EnrollmentTokens::ToJson(t));
  return http::ListResponse(std::move(items));
}

Result<Response> RevokeEnrollmentToken(const FleetPtr& fleet, const RequestContext& ctx) {
  const std::string text(ctx.PathParam("id").value_or(""));
  return Audited(fleet, ctx, "enrollment_token.revoke", "enrollment_token:" + text,
                 [&]() -> Result<Response> {
                   std::int64_t id = 0;
                   auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
                   if (ec != std::errc() || p != text.data() + text.size() || id < 1) {
                     return MakeError(ErrorKind::kInvalidArgument, "invalid_parameter",
                                      "the enrollment token id must be a positive integer");
                   }
                   EP_RETURN_IF_ERROR(fleet->enrollment_tokens->Revoke(id, Actor(ctx)));
                   return http::JsonResponse(boost::json::object{{"id", id}, {"revoked", true}});
                 });
}

Result<Response> ListDevices(const FleetPtr& fleet, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(int limit, LimitParam(ctx, 50, 500));
  auto status = Param(ctx, "status");
  static const std::vector<std::string> kStatuses = {"online", "offline", "never_seen", "active",
                                                     "revoked"};
  if (status && std::find(kStatuses.begin(), kStatuses.end(), *status) == kStatuses.end()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_parameter",
                     "query 'status' must be online, offline, never_seen, active or revoked");
  }
  fleet::DeviceListQuery q;
  q.tag = Param(ctx, "tag");
  q.after_id = Param(ctx, "cursor");
  q.include_revoked = !status || *status == "revoked";
  boost::json::array items;
  std::optional<std::string> next;
  // Liveness lives in memory, so the status filter runs here over id-ordered pages.
  while (static_cast<int>(items.size()) < limit) {
    EP_ASSIGN_OR_RETURN(auto page, fleet->registry->List(q, 500));
    for (const auto& d : page) {
      q.after_id = d.id;
      auto view = DeviceView(fleet, d);
      const std::string liveness(view["liveness"].as_string());
      bool keep = !status || *status == liveness || (*status == "active" && d.status == "active") ||
                  (*status == "revoked" && d.status == "revoked");
      if (!keep) continue;
      items.push_back(std::move(view));
      if (static_cast<int>(items.size()) == limit) {
        next = d.id;
        break;
      }
    }
    if (page.size() < 500) break;
  }
  // A full page may be the last one; the next call then returns no items.
  return http::ListResponse(std::move(items), next);
}

Result<Response> GetDevice(const FleetPtr& fleet, const RequestContext& ctx) {
  const std::string id(ctx.PathParam("id").value_or(""));
  EP_ASSIGN_OR_RETURN(auto d, fleet->registry->Get(id));
  auto o = DeviceView(fleet, d);
  EP_ASSIGN_OR_RETURN(auto latest, fleet->registry->LatestProfile(id));
  if (latest) {
    o["profile"] = wire::ToJson(latest->profile);
    o["profile_received_at_ms"] = latest->received_at_ms;
  } else {
    o["profile"] = nullptr;
  }
  return http::JsonResponse(o);
}

Result<Response> DeviceProfiles(const FleetPtr& fleet, const RequestContext& ctx) {
  const std::string id(ctx.PathParam("id").value_or(""));
  EP_ASSIGN_OR_RETURN(int limit, LimitParam(ctx, 20, 1000));
  EP_RETURN_IF_ERROR(fleet->registry->Get(id));
  EP_ASSIGN_OR_RETURN(auto history, fleet->registry->ProfileHistory(id, limit));
  boost::json::array items;
  for (const auto& p : history) {
    items.push_back(boost::json::object{{"received_at_ms", p.received_at_ms},
                                        {"profile", wire::ToJson(p.profile)},
                                        {"budget", wire::ToJson(p.budget)}});
  }
  return http::ListResponse(std::move(items));
}

Result<Response> PatchDevice(const FleetPtr& fleet, const RequestContext& ctx) {
  const std::string id(ctx.PathParam("id").value_or(""));
  return Audited(fleet, ctx, "device.patch", id, [&]() -> Result<Response> {
    EP_ASSIGN_OR_RETURN(auto body, json::ParseObject(ctx.body));
    EP_ASSIGN_OR_RETURN(auto patch, fleet::DevicePatch::FromJson(body));
    EP_ASSIGN_OR_RETURN(auto d, fleet->registry->Patch(id, patch, Actor(ctx)));
    return http::JsonResponse(DeviceView(fleet, d));
  });
}

Result<Response> RevokeDevice(const FleetPtr& fleet, const RequestContext& ctx) {
  const std::string id(ctx.PathParam("id").value_or(""));
  return Audited(fleet, ctx, "device.revoke", id, [&]() -> Result<Response> {
    EP_RETURN_IF_ERROR(fleet->registry->Revoke(id, Actor(ctx)));
    fleet->heartbeats->Forget(id);
    return http::JsonResponse(boost::json::object{{"id", id}, {"status", "revoked"}});
  });
}

Result<Response> ListAudit(const FleetPtr& fleet, const RequestContext& ctx) {
  fleet::AuditQuery q;
  EP_ASSIGN_OR_RETURN(q.limit, LimitParam(ctx, 100, 1000));
  q.actor = Param(ctx, "actor");
  q.action = Param(ctx, "action");
  q.target = Param(ctx, "target");
  if (auto cursor = Param(ctx, "cursor")) {
    std::int64_t id = 0;
    auto [p, ec] = std::from_chars(cursor->data(), cursor->data() + cursor->size(), id);
    if (ec != std::errc() || p != cursor->data() + cursor->size()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_parameter", "query 'cursor' must be an integer");
    }
    q.before_id = id;
  }
  EP_ASSIGN_OR_RETURN(auto entries, fleet->audit->List(q));
  boost::json::array items;
  for (const auto& e : entries) items.push_back(fleet::AuditLog::ToJson(e));
  std::optional<std::string> next;
  if (static_cast<int>(entries.size()) == q.limit) next = std::to_string(entries.back().id);
  return http::ListResponse(std::move(items), next);
}

}  // namespace

std::vector<http::Route> OperatorRoutes(FleetPtr fleet) {
  // clang-format off
  return {
      {Verb::post,   "/api/v1/tokens",                Bind<CreateToken>(fleet),           Auth::kAdmin,    "tokens_create"},
      {Verb::get,    "/api/v1/tokens",                Bind<ListTokens>(fleet),            Auth::kAdmin,    "tokens_list"},
      {Verb::delete_, "/api/v1/tokens/{name}",        Bind<RevokeToken>(fleet),           Auth::kAdmin,    "tokens_revoke"},
      {Verb::post,   "/api/v1/enrollment-tokens",     Bind<CreateEnrollmentToken>(fleet), Auth::kOperator, "enrollment_tokens_create"},
      {Verb::get,    "/api/v1/enrollment-tokens",     Bind<ListEnrollmentTokens>(fleet),  Auth::kOperator, "enrollment_tokens_list"},
      {Verb::delete_, "/api/v1/enrollment-tokens/{id}", Bind<RevokeEnrollmentToken>(fleet), Auth::kOperator, "enrollment_tokens_revoke"},
      {Verb::get,    "/api/v1/devices",               Bind<ListDevices>(fleet),           Auth::kViewer,   "devices_list"},
      {Verb::get,    "/api/v1/devices/{id}",          Bind<GetDevice>(fleet),             Auth::kViewer,   "devices_get"},
      {Verb::get,    "/api/v1/devices/{id}/profiles", Bind<DeviceProfiles>(fleet),        Auth::kViewer,   "devices_profiles"},
      {Verb::patch,  "/api/v1/devices/{id}",          Bind<PatchDevice>(fleet),           Auth::kOperator, "devices_patch"},
      {Verb::post,   "/api/v1/devices/{id}/revoke",   Bind<RevokeDevice>(fleet),          Auth::kOperator, "devices_revoke"},
      {Verb::get,    "/api/v1/audit",                 Bind<ListAudit>(fleet),             Auth::kOperator, "audit_list"},
  };
  // clang-format on
}

}  // namespace edgeprune::api
