#include "server/app/probes.hpp"

#include <boost/json.hpp>

namespace edgeprune::server {

std::vector<http::Route> ProbeRoutes(std::shared_ptr<store::Database> database) {
  std::vector<http::Route> routes;
  routes.push_back({http::Verb::get, "/healthz",
                    [](const http::RequestContext&) -> Result<http::Response> {
                      return http::TextResponse(R"({"status":"ok"})", "application/json");
                    },
                    http::Auth::kPublic, ""});
  routes.push_back({http::Verb::get, "/readyz",
                    [database](const http::RequestContext&) -> Result<http::Response> {
                      if (auto s = database->Ping(); !s.ok()) {
                        return MakeError(ErrorKind::kUnavailable, "database_unavailable",
                                         "the database does not answer: " + s.error().message);
                      }
                      return http::JsonResponse(
                          boost::json::object{{"status", "ready"}, {"database", "ok"}});
                    },
                    http::Auth::kPublic, ""});
  return routes;
}

}  // namespace edgeprune::server
