#pragma once
// The CLI's exit codes, one per outcome a script can act on, and the one mapping from an Error:
//   0 ok, 1 failed (the server refused or broke, the network failed), 2 usage (flags, arguments,
//   configuration), 3 not found (an unknown id), 4 permission (no, bad, revoked or too weak a token).
//
// Thread-safety: pure functions.

#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitPermission = 4;

// A mistake on the command line found after parsing (code "usage": exit 2).
inline Error UsageError(std::string message) {
  return MakeError(ErrorKind::kInvalidArgument, "usage", std::move(message));
}

inline int ExitCodeFor(const Error& e) {
  if (e.code == "usage" || e.code == "invalid_config") return kExitUsage;
  switch (e.kind) {
    case ErrorKind::kNotFound: return kExitNotFound;
    case ErrorKind::kUnauthenticated:
    case ErrorKind::kPermissionDenied: return kExitPermission;
    default: return kExitFailed;
  }
}

}  // namespace edgeprune::ctl
