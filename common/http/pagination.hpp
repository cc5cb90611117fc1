#pragma once
// The list-endpoint convention: `?limit=N&cursor=C`. limit defaults per endpoint and is capped;
// cursor is opaque to clients (the endpoint returns it as "next_cursor" when more items follow).
//
// Thread-safety: pure function.

#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"
#include "common/http/request_context.hpp"

namespace edgeprune::http {

struct PageRequest {
  int limit = 100;
  std::optional<std::string> cursor;
};

// 400 "invalid_parameter" naming the parameter when limit is not an integer in [1, max_limit].
Result<PageRequest> PageParams(const RequestContext& ctx, int default_limit, int max_limit);

}  // namespace edgeprune::http
