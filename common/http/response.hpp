#pragma once
// What a handler returns, and the one place that maps errors to HTTP status codes and to the
// JSON error body {"error": {"code": "...", "message": "..."}}.
//
// Thread-safety: plain value types and pure functions.

#include <boost/beast/http/status.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "common/http/file_range.hpp"

namespace edgeprune::http {

using HttpStatus = boost::beast::http::status;

struct Response {
  HttpStatus status = HttpStatus::ok;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // When set, the body is streamed from this file window instead of `body`.
  std::shared_ptr<RangeFile> file;

  Response& WithHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

// 200 (or `status`) with a serialized JSON value.
Response JsonResponse(const boost::json::value& value, HttpStatus status = HttpStatus::ok);
Response TextResponse(std::string body, std::string content_type, HttpStatus status = HttpStatus::ok);

// The single mapping from ErrorKind to status.
HttpStatus StatusFor(ErrorKind kind);
// An error as an HTTP response: StatusFor(kind) and the JSON error body.
Response ErrorResponse(const Error& error);
Response ErrorResponse(HttpStatus status, const std::string& code, const std::string& message);
// 429 with Retry-After (whole seconds, at least 1) and the JSON error body.
Response TooManyRequests(const std::string& code, const std::string& message,
                         std::int64_t retry_after_s);
// The message with every absolute file-system path ("/var/lib/x/edgeprune.db") replaced by
// "<path>": error text from the store, the blob store or LibTorch names server files, which a
// client has no business learning. URL paths of this API (/api/..., /agent/...) are kept.
std::string RedactPaths(const std::string& message);
// The exact error body, for responses the session builds itself (413, 431).
std::string ErrorBody(const std::string& code, const std::string& message);

}  // namespace edgeprune::http
