#pragma once
// Enrollment tokens (table enrollment_tokens): made by an operator with an expiry and a maximum
// use count, shown once, stored as SHA-256. An agent spends one use to enroll.
//
// Thread-safety: safe to call from any thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"
#include "server/fleet/audit_log.hpp"
#include "edgeprune/common/clock.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

struct EnrollmentTokenSpec {
  std::chrono::seconds ttl{24 * 3600};
  std::int64_t max_uses = 1;
  std::vector<std::string> tags;  // given to every device enrolled with the token
  std::string note;
};

struct EnrollmentTokenInfo {
  std::int64_t id = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::int64_t max_uses = 0;
  std::int64_t uses = 0;
  std::vector<std::string> tags;
  std::string note;
  std::string created_by;
  std::optional<std::int64_t> revoked_at_ms;
};

struct CreatedEnrollmentToken {
  EnrollmentTokenInfo info;
  std::string secret;  // shown once
};

class EnrollmentTokens {
 public:
  static constexpr std::int64_t kMaxUses = 100000;
  static constexpr std::chrono::seconds kMaxTtl{365 * 24 * 3600};

  EnrollmentTokens(std::shared_ptr<store::Database> db, std::shared_ptr<const Clock> clock,
                   std::shared_ptr<const AuditLog> audit)
      : db_(std::move(db)), clock_(std::move(clock)), audit_(std::move(audit)) {}

  // Parses and bounds {"ttl_s", "max_uses", "tags", "note"} (all optional).
  static Result<EnrollmentTokenSpec> SpecFromJson(const boost::json::object& o);
  static boost::json::object ToJson(const EnrollmentTokenInfo& info);

  Result<CreatedEnrollmentToken> Create(const EnrollmentTokenSpec& spec, const std::string& actor);

  // Every token, newest first, without secrets (only their hashes are stored anyway).
  Result<std::vector<EnrollmentTokenInfo>> List() const;
  // Revokes a token: it enrolls nothing more. Audited in the same transaction.
  // "enrollment_token_not_found" (kNotFound), "enrollment_token_revoked" (kConflict) when it
  // already was.
  Status Revoke(std::int64_t id, const std::string& actor);

  // Spends one use inside the caller's transaction. Unknown → "invalid_enrollment_token"
  // (kUnauthenticated); expired → "enrollment_token_expired", used up →
  // "enrollment_token_used_up", revoked → "enrollment_token_revoked" (kPermissionDenied).
  Result<EnrollmentTokenInfo> Consume(store::Connection& conn, std::string_view secret) const;

 private:
  std::shared_ptr<store::Database> db_;
  std::shared_ptr<const Clock> clock_;
  std::shared_ptr<const AuditLog> audit_;
};

// JSON array text ↔ tags.
std::string TagsToJsonText(const std::vector<std::string>& tags);
std::vector<std::string> TagsFromJsonText(const std::string& text);
// Tags: at most 32, each 1–64 of [A-Za-z0-9._:=-].
Status ValidateTags(const std::vector<std::string>& tags);

}  // namespace edgeprune::fleet
