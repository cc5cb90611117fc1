#include "server/api/openapi_routes.hpp"

#include <string>

#include "edgeprune/common/crypto.hpp"
#include "server/api/route_table.hpp"

namespace edgeprune::api {
namespace {

const std::string& ETag() {
  static const std::string etag = "\"" + crypto::Sha256Hex(OpenApiDocument()) + "\"";
  return etag;
}

// RFC 9110 13.1.2: "*" or a list of entity tags; weak comparison, so W/"x" matches "x".
bool Matches(std::string_view if_none_match, std::string_view etag) {
  std::size_t pos = 0;
  while (pos < if_none_match.size()) {
    std::size_t end = if_none_match.find(',', pos);
    if (end == std::string_view::npos) end = if_none_match.size();
    std::string_view tag = if_none_match.substr(pos, end - pos);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    pos = end + 1;
  }
  return false;
}

Result<Response> GetOpenApi(const RequestContext& ctx) {
  Response r;
  // no-cache: a client may keep the document but asks again (cheaply, 304) before using it.
  if (auto inm = ctx.Header("if-none-match"); inm && Matches(*inm, ETag())) {
    r.status = http::HttpStatus::not_modified;
  } else {
    r = http::TextResponse(std::string(OpenApiDocument()), "application/json");
  }
  r.WithHeader("ETag", ETag()).WithHeader("Cache-Control", "public, no-cache");
  return r;
}

}  // namespace

std::vector<http::Route> OpenApiRoutes() {
  return {{Verb::get, "/api/v1/openapi.json", GetOpenApi, Auth::kPublic, "openapi"}};
}

}  // namespace edgeprune::api
