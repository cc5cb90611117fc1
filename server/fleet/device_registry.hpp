#pragma once
// The device fleet (tables devices, device_certificates, device_profiles): enrollment with a
// token and a CSR, certificate renewal, revocation, the mapping of a presented client
// certificate to its device, profiles with their derived budgets, tags and operator caps.
//
// A presented certificate is accepted only when it verified against the device CA, was issued
// by this server (its SHA-256 fingerprint is recorded), is within its validity, names its device
// in the subject CN and that device is not revoked. Accepted fingerprints are cached in memory
// for RegistryOptions::cache_ttl; Revoke() drops them at once in this process, and the TTL bounds
// how long another server process on the same database keeps accepting a revoked device.
//
// Thread-safety: all methods are safe to call concurrently.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/log_safety.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/tls.hpp"
#include "edgeprune/common/wire/enroll.hpp"
#include "edgeprune/common/wire/profile.hpp"
#include "server/fleet/audit_log.hpp"
#include "server/fleet/budget.hpp"
#include "edgeprune/common/clock.hpp"
#include "server/fleet/device_ca.hpp"
#include "server/fleet/enrollment_tokens.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

struct DeviceRecord {
  std::string id;
  std::string hostname;
  std::string status;  // "active" | "revoked"
  std::vector<std::string> tags;
  wire::DeviceCaps caps;  // operator caps
  std::int64_t enrolled_at_ms = 0;
  std::optional<std::int64_t> revoked_at_ms;
  std::optional<std::int64_t> last_seen_ms;  // as last flushed; the tracker has fresher
  std::string agent_state;
  std::optional<std::string> installed_variant;
  std::optional<Budget> budget;
  std::optional<std::int64_t> cert_not_after_s;  // newest certificate
};

struct DeviceListQuery {
  std::optional<std::string> tag{};
  std::optional<std::string> after_id{};  // pagination cursor
  bool include_revoked = true;
};

struct DevicePatch {
  std::optional<std::vector<std::string>> tags;
  std::optional<wire::DeviceCaps> caps;  // replaces the operator caps
  static Result<DevicePatch> FromJson(const boost::json::object& o);
};

struct ProfileRecord {
  std::int64_t received_at_ms = 0;
  wire::DeviceProfile profile;
  Budget budget;
};

struct RegistryOptions {
  std::chrono::seconds certificate_validity{30 * 24 * 3600};
  // At most one certificate per device per this interval (enrollment included); sooner → 429.
  std::chrono::seconds renew_min_interval{3600};
  // How long a device's previous certificates stay valid after a renewal.
  std::chrono::seconds renew_overlap{600};
  BudgetPolicy budget_policy;
  // How long an accepted certificate is trusted from memory before the database is asked again
  // (0: always ask). Revocations made by other processes sharing the database take effect here
  // within it; a revocation through this process takes effect at once.
  std::chrono::milliseconds cache_ttl{500};
  // Test seam: runs in AuthenticateCertificate between the database lookup and the cache insert,
  // where a concurrent revocation used to be overwritten (issue 13 item 10). Null in production.
  std::function<void()> before_cache_insert;
};

// Why a renewal was refused for now, with the seconds after which it may succeed.
struct RenewalRateLimited {
  std::int64_t retry_after_s = 0;
};

class DeviceRegistry {
 public:
  DeviceRegistry(std::shared_ptr<store::Database> db, std::shared_ptr<const Clock> clock,
                 std::shared_ptr<const AuditLog> audit, std::shared_ptr<const DeviceCa> ca,
                 std::shared_ptr<const EnrollmentTokens> tokens, RegistryOptions options);

  // Spends a token use, creates the device and issues its first certificate, all in one
  // durable transaction: any failure leaves nothing behind. Refusals are logged (at most a line
  // a second) and counted, not audited: the caller is anonymous.
  Result<wire::CertificateGrant> Enroll(const wire::EnrollRequest& request);
  // A fresh certificate for an authenticated device, over the key of the certificate it
  // presented (presented_key_sha256, tls::PeerCertificate::public_key_sha256): another key is
  // 403 "renewal_key_mismatch". At most one per renew_min_interval: sooner is kResourceExhausted
  // "renewal_rate_limited" with *retry_after set. The device's older certificates then expire
  // renew_overlap from now (in the database and the cache), all in one transaction.
  Result<wire::CertificateGrant> Renew(const std::string& device_id, const std::string& csr_pem,
                                       const std::string& presented_key_sha256,
                                       RenewalRateLimited* retry_after = nullptr);
  Status Revoke(const std::string& device_id, const std::string& actor);

  // Maps a verified peer certificate to its device id. "unknown_device", "certificate_expired",
  // "device_revoked" (all kUnauthenticated; kPermissionDenied for revoked).
  Result<std::string> AuthenticateCertificate(const tls::PeerCertificate& cert);

  Result<DeviceRecord> Get(const std::string& device_id) const;
  // Ordered by id, after the cursor; at most limit rows.
  Result<std::vector<DeviceRecord>> List(const DeviceListQuery& query, int limit) const;
  // Called after a committed change of a device's stored budget (a new profile or new operator
  // caps), outside the transaction, on the caller's thread. Set once before serving.
  using BudgetListener = std::function<void(const std::string& device_id)>;
  void OnBudgetChanged(BudgetListener listener) { budget_listener_ = std::move(listener); }

  Result<DeviceRecord> Patch(const std::string& device_id, const DevicePatch& patch,
                             const std::string& actor);

  // Stores the profile in the history and the budget derived from it and the operator caps.
  Result<Budget> RecordProfile(const std::string& device_id, const wire::DeviceProfile& profile);
  Result<std::optional<ProfileRecord>> LatestProfile(const std::string& device_id) const;
  Result<std::vector<ProfileRecord>> ProfileHistory(const std::string& device_id, int limit) const;
  // Retention (the retention task): deletes profiles received before `before_ms` (0: none by
  // age) and, with keep_per_device > 0, all but each device's newest keep_per_device; returns
  // how many. Each device's newest profile always stays: its budget is recomputed from it when
  // the operator changes the device's caps.
  Result<std::int64_t> PruneProfiles(std::int64_t before_ms, std::int64_t keep_per_device);

  // Counts by status for metrics: {"active": n, "revoked": m}.
  Result<std::unordered_map<std::string, std::int64_t>> CountByStatus() const;

 private:
  struct CachedCert {
    std::string device_id;
    std::int64_t not_after_s = 0;
    std::int64_t cached_at_ms = 0;  // entries older than cache_ttl are misses
  };
  Result<wire::CertificateGrant> IssueAndRecord(store::Connection& conn,
                                                const std::string& device_id,
                                                const IssuedCertificate& cert);
  Result<Budget> RecomputeBudget(store::Connection& conn, const std::string& device_id,
                                 const wire::DeviceCaps& caps);

  void LogRefusedEnrollment(const Error& error);

  void NotifyBudgetChanged(const std::string& device_id) const {
    if (budget_listener_) budget_listener_(device_id);
  }

  std::shared_ptr<store::Database> db_;
  BudgetListener budget_listener_;
  std::shared_ptr<const Clock> clock_;
  std::shared_ptr<const AuditLog> audit_;
  std::shared_ptr<const DeviceCa> ca_;  // null: enrollment and renewal answer 503
  std::shared_ptr<const EnrollmentTokens> tokens_;
  RegistryOptions options_;
  mutable std::shared_mutex cache_mu_;
  std::unordered_map<std::string, CachedCert> cert_cache_;  // fingerprint → device
  // Bumped (under cache_mu_) by every change that shrinks what the cache may hold: a lookup
  // that began under an older generation does not insert its possibly stale answer.
  std::uint64_t cache_generation_ = 0;
  log::Throttle refused_log_;  // refused anonymous enrollments: at most one log line a second
};

boost::json::object ToJson(const DeviceRecord& d);

}  // namespace edgeprune::fleet
