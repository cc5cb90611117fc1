#include "edgeprune/common/result.hpp"

namespace edgeprune {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid_argument";
    case ErrorKind::kUnauthenticated: return "unauthenticated";
    case ErrorKind::kPermissionDenied: return "permission_denied";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kConflict: return "conflict";
    case ErrorKind::kPayloadTooLarge: return "payload_too_large";
    case ErrorKind::kFailedPrecondition: return "failed_precondition";
    case ErrorKind::kResourceExhausted: return "resource_exhausted";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kIo: return "io";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

const char* RetryName(Retry retry) {
  switch (retry) {
    case Retry::kTransient: return "transient";
    case Retry::kLimited: return "limited";
    case Retry::kPermanent: return "permanent";
  }
  return "transient";
}

}  // namespace edgeprune
