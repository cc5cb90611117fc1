#include "common/http/response.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <string_view>

namespace edgeprune::http {

Response JsonResponse(const boost::json::value& value, HttpStatus status) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(value);
  return r;
}

Response TextResponse(std::string body, std::string content_type, HttpStatus status) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

HttpStatus StatusFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return HttpStatus::bad_request;
    case ErrorKind::kUnauthenticated: return HttpStatus::unauthorized;
    case ErrorKind::kPermissionDenied: return HttpStatus::forbidden;
    case ErrorKind::kNotFound: return HttpStatus::not_found;
    case ErrorKind::kConflict: return HttpStatus::conflict;
    case ErrorKind::kPayloadTooLarge: return HttpStatus::payload_too_large;
    case ErrorKind::kFailedPrecondition: return HttpStatus::unprocessable_entity;
    case ErrorKind::kResourceExhausted: return HttpStatus::too_many_requests;
    case ErrorKind::kUnavailable: return HttpStatus::service_unavailable;
    case ErrorKind::kTimeout: return HttpStatus::gateway_timeout;
    case ErrorKind::kIo: return HttpStatus::internal_server_error;
    case ErrorKind::kInternal: return HttpStatus::internal_server_error;
  }
  return HttpStatus::internal_server_error;
}

std::string ErrorBody(const std::string& code, const std::string& message) {
  boost::json::object inner;
  inner["code"] = code;
  inner["message"] = message;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  return boost::json::serialize(outer);
}

Response ErrorResponse(HttpStatus status, const std::string& code, const std::string& message) {
  Response r;
  r.status = status;
  r.body = ErrorBody(code, message);
  if (status == HttpStatus::unauthorized) {
    r.WithHeader("WWW-Authenticate", "Bearer realm=\"edgeprune\"");
  }
  return r;
}

Response TooManyRequests(const std::string& code, const std::string& message,
                         std::int64_t retry_after_s) {
  Response r = ErrorResponse(HttpStatus::too_many_requests, code, message);
  r.WithHeader("Retry-After", std::to_string(std::max<std::int64_t>(1, retry_after_s)));
  return r;
}

std::string RedactPaths(const std::string& message) {
  auto path_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' ||
           c == '-' || c == '+' || c == '~' || c == '@';
  };
  std::string out;
  out.reserve(message.size());
  std::size_t i = 0;
  while (i < message.size()) {
    const bool starts = message[i] == '/' && (i == 0 || !path_char(message[i - 1]));
    if (!starts) {
      out += message[i++];
      continue;
    }
    std::size_t end = i;
    while (end < message.size() && path_char(message[end])) ++end;
    std::string_view token(message.data() + i, end - i);
    // A lone "/" or "/x" is no file path; this API's own routes are public knowledge.
    const bool api = token.rfind("/api/", 0) == 0 || token.rfind("/agent/", 0) == 0;
    if (api || token.find('/', 1) == std::string_view::npos) {
      out.append(token);
    } else {
      out += "<path>";
    }
    i = end;
  }
  return out;
}

Response ErrorResponse(const Error& error) {
  return ErrorResponse(StatusFor(error.kind), error.code, error.message);
}

}  // namespace edgeprune::http
