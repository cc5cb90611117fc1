#pragma once
// A handler helper that streams a file from disk with single-range support: no Range header →
// 200 with the whole file; a satisfiable range → 206 + Content-Range; a malformed, multiple or
// unsatisfiable range → 416 + "Content-Range: bytes */<size>". Always sends Accept-Ranges: bytes.
// With an entity tag (a quoted strong validator such as the content's SHA-256) the response
// carries ETag, and a Range sent with If-Range is honoured only when If-Range is that exact tag:
// a client resuming a download of content that changed meanwhile gets the whole new file (200)
// instead of a tail spliced onto the old one (RFC 9110 §13.1.5; a date never matches).
//
// Thread-safety: pure function; the returned response owns its open file.

#include <string>

#include "edgeprune/common/result.hpp"
#include "common/http/request_context.hpp"
#include "common/http/response.hpp"

namespace edgeprune::http {

// A missing file is kNotFound (404); an unreadable one kIo.
Result<Response> FileResponse(const RequestContext& ctx, const std::string& path,
                              std::string content_type = "application/octet-stream",
                              const std::string& etag = "");

}  // namespace edgeprune::http
