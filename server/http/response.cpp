#include "server/http/response.hpp"

#include <boost/json.hpp>

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

Response ErrorResponse(const Error& error) {
  return ErrorResponse(StatusFor(error.kind), error.code, error.message);
}

}  // namespace edgeprune::http
