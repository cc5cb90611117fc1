#include "server/api/loop_routes.hpp"

#include "common/http/pagination.hpp"
#include "edgeprune/common/json.hpp"
#include "server/api/route_table.hpp"
#include "server/deploy/build_job.hpp"
#include "server/jobs/job.hpp"

namespace edgeprune::api {
namespace {

namespace bj = boost::json;

Result<Response> CreateDeployment(const DeployRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(bj::object body, json::ParseObject(ctx.body));
  for (const auto& kv : body) {
    if (kv.key() != "model" && kv.key() != "selector") {
      return BadRequest("invalid_field", "unknown key '" + std::string(kv.key()) + "'");
    }
  }
  EP_ASSIGN_OR_RETURN(std::string model, json::GetString(body, "model"));
  EP_ASSIGN_OR_RETURN(bj::object selector_json, json::GetObject(body, "selector"));
  EP_ASSIGN_OR_RETURN(deploy::Selector selector, deploy::SelectorFromJson(selector_json));
  EP_ASSIGN_OR_RETURN(auto result, s.deployments->Deploy(model, selector, Actor(ctx)));
  if (s.refresh_gauges) s.refresh_gauges();
  return http::JsonResponse(ToJson(result), http::HttpStatus::created);
}

Result<Response> ListJobs(const DeployRouteServices& s, const RequestContext& ctx) {
  jobs::JobFilter filter;
  if (auto state = ctx.QueryParam("state")) {
    EP_ASSIGN_OR_RETURN(auto st, jobs::ParseJobState(*state));
    filter.state = st;
  }
  if (auto kind = ctx.QueryParam("kind")) filter.kind = std::string(*kind);
  EP_ASSIGN_OR_RETURN(auto list, s.queue->List(filter));
  bj::array out;
  for (const auto& j : list) out.push_back(jobs::JobToJson(j));
  return http::ListResponse(std::move(out));
}

Result<Response> GetJob(const DeployRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto job, s.queue->Get(*ctx.PathParam("id")));
  return http::JsonResponse(jobs::JobToJson(job));
}

Result<Response> CancelJob(const DeployRouteServices& s, const RequestContext& ctx) {
  const std::string id(*ctx.PathParam("id"));
  // Audited like every operator change: a cancel with its row in the cancel's transaction, a
  // refused one (unknown, already finished) on its own.
  auto cancelled = s.queue->Cancel(id, [&](store::Connection& conn, const jobs::Job& j) {
    return fleet::AuditLog::RecordIn(conn, Actor(ctx), "job.cancel", id,
                 std::string("state=") + jobs::JobStateName(j.state));
  });
  if (!cancelled.ok()) {
    if (s.audit) {
      (void)s.audit->Record(Actor(ctx), "job.cancel", id, fleet::Outcome::kFailed,
                             cancelled.error().ToString());
    }
    return cancelled.error();
  }
  jobs::Job job = std::move(cancelled).value();
  // A queued build cancelled before it ran never reaches its handler: fail its variant here.
  if (job.kind == std::string(deploy::kBuildVariantJob) && job.state == jobs::JobState::kCancelled) {
    if (auto id = json::GetString(job.payload, "variant_id"); id.ok()) {
      (void)s.variants->MarkFailed(*id, "cancelled by an operator");
    }
  }
  return http::JsonResponse(jobs::JobToJson(job));
}

Result<Response> ListDeployments(const DeployRouteServices& s, const RequestContext&) {
  EP_ASSIGN_OR_RETURN(auto list, s.deployments->List());
  return http::ListResponse(std::move(list));
}

Result<Response> GetDeployment(const DeployRouteServices& s, const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto d, s.deployments->Get(std::string(*ctx.PathParam("id"))));
  return http::JsonResponse(d);
}

}  // namespace

std::vector<http::Route> DeployRoutes(const DeployRouteServices& s) {
  // clang-format off
  return {
      {Verb::post,    "/api/v1/deployments",      Bind<CreateDeployment>(s), Auth::kOperator, "deployments_create"},
      {Verb::get,     "/api/v1/deployments",      Bind<ListDeployments>(s),  Auth::kViewer,   "deployments_list"},
      {Verb::get,     "/api/v1/deployments/{id}", Bind<GetDeployment>(s),    Auth::kViewer,   "deployments_get"},
      {Verb::get,     "/api/v1/jobs",             Bind<ListJobs>(s),         Auth::kViewer,   "jobs_list"},
      {Verb::get,     "/api/v1/jobs/{id}",        Bind<GetJob>(s),           Auth::kViewer,   "jobs_get"},
      {Verb::delete_, "/api/v1/jobs/{id}",        Bind<CancelJob>(s),        Auth::kOperator, "jobs_cancel"},
  };
  // clang-format on
}

}  // namespace edgeprune::api
