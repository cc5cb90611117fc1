#pragma once
// The list-endpoint convention: `?limit=N&cursor=C`. limit defaults per endpoint and is capped;
// cursor is opaque to clients (the endpoint returns it as "next_cursor" when more items follow).
// Every list endpoint answers the one envelope {"items": [...], "next_cursor": "…" | null}.
//
// Thread-safety: pure function.

#include <optional>
#include <string>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "edgeprune/common/result.hpp"
#include "common/http/request_context.hpp"
#include "common/http/response.hpp"

namespace edgeprune::http {

struct PageRequest {
  int limit = 100;
  std::optional<std::string> cursor;
};

// 400 "invalid_parameter" naming the parameter when limit is not an integer in [1, max_limit].
Result<PageRequest> PageParams(const RequestContext& ctx, int default_limit, int max_limit);

// 200 {"items": items, "next_cursor": next_cursor or null}, plus `about`'s fields when the list
// belongs to something (a device's telemetry names the device); `about` cannot replace the two.
Response ListResponse(boost::json::array items, std::optional<std::string> next_cursor = std::nullopt,
                      boost::json::object about = {});

}  // namespace edgeprune::http
