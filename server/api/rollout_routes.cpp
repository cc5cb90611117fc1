#include "server/api/loop_routes.hpp"

#include "common/http/pagination.hpp"
#include "edgeprune/common/json.hpp"
#include "server/api/route_table.hpp"
#include "server/deploy/rollout_spec.hpp"
#include "server/deploy/rollouts.hpp"

namespace edgeprune::api {
namespace {

namespace bj = boost::json;

// A refused change is audited on its own (the change's transaction never committed).
Error Refused(const RolloutRouteServices& s, const RequestContext& ctx, const std::string& action,
              const std::string& target, const Error& error) {
  if (s.audit) {
    (void)s.audit->Record(Actor(ctx), action, target, fleet::Outcome::kFailed, error.ToString());
  }
  return error;
}

Result<Response> CreateRollout(const RolloutRouteServices& s, const RequestContext& ctx) {
  auto spec = [&]() -> Result<deploy::RolloutSpec> {
    EP_ASSIGN_OR_RETURN(bj::object body, json::ParseObject(ctx.body));
    return deploy::RolloutSpecFromJson(body);
  }();
  if (!spec.ok()) return Refused(s, ctx, "rollout.create", "", spec.error());
  auto created = s.rollouts->Create(*spec, Actor(ctx));
  if (!created.ok()) return Refused(s, ctx, "rollout.create", spec->model_id, created.error());
  if (s.refresh_gauges) s.refresh_gauges();
  return http::JsonResponse(*created, http::HttpStatus::created);
}

Result<Response> ListRollouts(const RolloutRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(http::PageRequest page, http::PageParams(ctx, 100, 500));
  if (page.cursor && page.cursor->size() > 64) {
    return BadRequest("invalid_parameter", "query 'cursor' is not a rollout id");
  }
  EP_ASSIGN_OR_RETURN(bj::array items, s.rollouts->List(page.cursor, page.limit + 1));
  std::optional<std::string> next;
  if (items.size() > static_cast<std::size_t>(page.limit)) {
    items.pop_back();
    next = std::string(items.back().as_object().at("id").as_string());
  }
  return http::ListResponse(std::move(items), next);
}

Result<Response> GetRollout(const RolloutRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto r, s.rollouts->Get(std::string(*ctx.PathParam("id"))));
  return http::JsonResponse(r);
}

template <deploy::RolloutAction A>
Result<Response> Act(const RolloutRouteServices& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  const std::string action = std::string("rollout.") + deploy::RolloutActionName(A);
  if (!ctx.body.empty()) {
    // The actions take no parameters; a body is a client error, not something to ignore.
    auto body = json::ParseObject(ctx.body);
    if (!body.ok()) return Refused(s, ctx, action, id, body.error());
    if (!body->empty()) {
      return Refused(s, ctx, action, id,
                     BadRequest("invalid_field", std::string(deploy::RolloutActionName(A)) +
                                                     " takes no body fields"));
    }
  }
  auto r = s.rollouts->Act(id, A, Actor(ctx));
  if (!r.ok()) return Refused(s, ctx, action, id, r.error());
  if (s.refresh_gauges) s.refresh_gauges();
  return http::JsonResponse(*r);
}

}  // namespace

std::vector<http::Route> RolloutRoutes(const RolloutRouteServices& s) {
  using deploy::RolloutAction;
  // clang-format off
  return {
      {Verb::post, "/api/v1/rollouts",              Bind<CreateRollout>(s),                Auth::kOperator, "rollouts_create"},
      {Verb::get,  "/api/v1/rollouts",              Bind<ListRollouts>(s),                 Auth::kViewer,   "rollouts_list"},
      {Verb::get,  "/api/v1/rollouts/{id}",         Bind<GetRollout>(s),                   Auth::kViewer,   "rollouts_get"},
      {Verb::post, "/api/v1/rollouts/{id}/pause",   Bind<Act<RolloutAction::kPause>>(s),   Auth::kOperator, "rollouts_pause"},
      {Verb::post, "/api/v1/rollouts/{id}/resume",  Bind<Act<RolloutAction::kResume>>(s),  Auth::kOperator, "rollouts_resume"},
      {Verb::post, "/api/v1/rollouts/{id}/promote", Bind<Act<RolloutAction::kPromote>>(s), Auth::kOperator, "rollouts_promote"},
      {Verb::post, "/api/v1/rollouts/{id}/abort",   Bind<Act<RolloutAction::kAbort>>(s),   Auth::kOperator, "rollouts_abort"},
      {Verb::post, "/api/v1/rollouts/{id}/approve", Bind<Act<RolloutAction::kApprove>>(s), Auth::kOperator, "rollouts_approve"},
  };
  // clang-format on
}

}  // namespace edgeprune::api
