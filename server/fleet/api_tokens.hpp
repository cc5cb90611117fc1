#pragma once
// Operator bearer tokens (table api_tokens). The secret ("ept_" + 32 random bytes, URL-safe
// base64) is returned once at creation; only its SHA-256 is stored. Roles: admin > operator >
// viewer, enforced per route by the router.
//
// Thread-safety: safe to call from any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/fleet/audit_log.hpp"
#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/role.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

struct ApiTokenInfo {
  std::int64_t id = 0;
  std::string name;
  Role role = Role::kViewer;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> revoked_at_ms;
};

struct CreatedToken {
  ApiTokenInfo info;
  std::string secret;  // shown once
};

class ApiTokens {
 public:
  ApiTokens(std::shared_ptr<store::Database> db, std::shared_ptr<const Clock> clock,
            std::shared_ptr<const AuditLog> audit)
      : db_(std::move(db)), clock_(std::move(clock)), audit_(std::move(audit)) {}

  // Name: 1–64 of [A-Za-z0-9._-]; "token_name_taken" (kConflict) when used.
  Result<CreatedToken> Create(const std::string& name, Role role, const std::string& actor);
  // Unknown or revoked → "invalid_token" (kUnauthenticated).
  Result<ApiTokenInfo> Authenticate(std::string_view secret) const;
  Status Revoke(const std::string& name, const std::string& actor);
  Result<std::vector<ApiTokenInfo>> List() const;
  // First start of an empty database: creates "bootstrap-admin" and returns its secret; returns
  // nullopt once any token was ever made (also when every admin token has been revoked).
  Result<std::optional<CreatedToken>> EnsureAdmin();

 private:
  std::shared_ptr<store::Database> db_;
  std::shared_ptr<const Clock> clock_;
  std::shared_ptr<const AuditLog> audit_;
};

}  // namespace edgeprune::fleet
