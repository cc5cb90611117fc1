#include "common/http/file_response.hpp"

namespace edgeprune::http {

Result<Response> FileResponse(const RequestContext& ctx, const std::string& path,
                              std::string content_type, const std::string& etag) {
  EP_ASSIGN_OR_RETURN(RangeFile file, RangeFile::Open(path));
  const std::uint64_t total = file.total_size();
  Response r;
  r.content_type = std::move(content_type);
  r.WithHeader("Accept-Ranges", "bytes");
  if (!etag.empty()) r.WithHeader("ETag", etag);
  auto range_header = ctx.Header("range");
  if (auto if_range = ctx.Header("if-range"); range_header && if_range) {
    // Strong comparison only; without a tag of ours nothing can match.
    if (etag.empty() || *if_range != etag) range_header.reset();
  }
  if (range_header) {
    auto range = ParseRange(*range_header, total);
    if (!range.ok()) {
      Response bad = ErrorResponse(HttpStatus::range_not_satisfiable, range.error().code,
                                   range.error().message);
      bad.WithHeader("Content-Range", "bytes */" + std::to_string(total));
      return bad;
    }
    file.SetWindow(range->offset, range->length);
    r.status = HttpStatus::partial_content;
    r.WithHeader("Content-Range", "bytes " + std::to_string(range->offset) + "-" +
                                      std::to_string(range->offset + range->length - 1) + "/" +
                                      std::to_string(total));
  }
  r.file = std::make_shared<RangeFile>(std::move(file));
  return r;
}

}  // namespace edgeprune::http
