#include "common/http/pagination.hpp"

#include <charconv>

namespace edgeprune::http {

Result<PageRequest> PageParams(const RequestContext& ctx, int default_limit, int max_limit) {
  PageRequest page;
  page.limit = default_limit;
  if (auto text = ctx.QueryParam("limit")) {
    int v = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (text->empty() || ec != std::errc() || p != text->data() + text->size() || v < 1 ||
        v > max_limit) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_parameter",
                       "query parameter 'limit' must be an integer from 1 to " +
                           std::to_string(max_limit) + ", got '" + std::string(*text) + "'");
    }
    page.limit = v;
  }
  if (auto cursor = ctx.QueryParam("cursor"); cursor && !cursor->empty()) {
    page.cursor = std::string(*cursor);
  }
  return page;
}

Response ListResponse(boost::json::array items, std::optional<std::string> next_cursor,
                      boost::json::object about) {
  boost::json::object body = std::move(about);
  body["items"] = std::move(items);
  body["next_cursor"] = nullptr;
  if (next_cursor) body["next_cursor"] = *next_cursor;
  return JsonResponse(body);
}

}  // namespace edgeprune::http
