// DeviceRegistry's identity half: enrollment, certificate issue and renewal, revocation and the
// mapping of a presented client certificate to its device (with its cache). The fleet half
// (records, profiles, budgets, tags) is in device_registry.cpp.
#include "server/fleet/device_registry.hpp"

#include <algorithm>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::fleet {
namespace {

Error NotFound(const std::string& id) {
  return MakeError(ErrorKind::kNotFound, "device_not_found", "no device with id '" + id + "'");
}

Error NoCa() {
  return MakeError(ErrorKind::kUnavailable, "enrollment_unavailable",
                   "this server has no device CA configured (fleet.device_ca_cert)");
}

std::string NewDeviceId() { return "dev-" + crypto::Sha256Hex(crypto::RandomToken(16)).substr(0, 16); }

}  // namespace

Result<wire::CertificateGrant> DeviceRegistry::IssueAndRecord(store::Connection& conn,
                                                              const std::string& device_id,
                                                              const IssuedCertificate& cert) {
  EP_RETURN_IF_ERROR(conn.Execute(
      "device_certificate_insert",
      "INSERT INTO device_certificates (device_id, serial_hex, fingerprint, not_before, "
      "not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?)",
      device_id, cert.serial_hex, cert.fingerprint_sha256, cert.not_before, cert.not_after,
      clock_->NowMs()));
  return wire::CertificateGrant{device_id, cert.pem, cert.not_before, cert.not_after};
}

Result<wire::CertificateGrant> DeviceRegistry::Enroll(const wire::EnrollRequest& request) {
  if (!ca_) return NoCa();
  const std::string device_id = NewDeviceId();
  // The CSR is checked before the token is touched: a bad CSR spends no use.
  auto cert = ca_->Issue(request.csr_pem, device_id, options_.certificate_validity, clock_->NowS());
  if (!cert.ok()) {
    LogRefusedEnrollment(cert.error());
    return cert.error();
  }
  // Durable: a spent use of a one-time token must stay spent after a power cut. Retried: a batch
  // of devices enrolling with one token all update its row, and PostgreSQL aborts all but one of
  // the concurrent transactions (a third of 200 concurrent enrollments failed with 503). 8
  // attempts still lost 77 of 20,000 enrollments from four enrollers on two replicas; 20
  // (pauses capped at 256 ms) bound the wait at a few seconds.
  auto grant = db_->WithRetriedDurableTransaction([&](store::Connection& conn) -> Result<wire::CertificateGrant> {
    EP_ASSIGN_OR_RETURN(EnrollmentTokenInfo token, tokens_->Consume(conn, request.token));
    EP_RETURN_IF_ERROR(conn.Execute(
        "device_insert",
        "INSERT INTO devices (id, hostname, tags, enrolled_at, enrollment_token) VALUES (?, ?, ?, ?, ?)",
        device_id, request.hostname, TagsToJsonText(token.tags), clock_->NowMs(), token.id));
    EP_ASSIGN_OR_RETURN(auto g, IssueAndRecord(conn, device_id, *cert));
    EP_RETURN_IF_ERROR(audit_->Record(conn, "device:" + device_id, "device.enroll", device_id,
                                      Outcome::kOk,
                                      "enrollment_token=" + std::to_string(token.id) +
                                          " serial=" + cert->serial_hex));
    return g;
  }, 20);
  if (!grant.ok()) {
    LogRefusedEnrollment(grant.error());
    return grant.error();
  }
  log::Get("fleet")->info("enrolled device {} ({})", device_id, request.hostname);
  return grant;
}

void DeviceRegistry::LogRefusedEnrollment(const Error& error) {
  // Not audited: the caller proved nothing, and a row per request would let anyone fill the
  // audit table (docs/security.md). Counted in edgeprune_enrollments_total{outcome="denied"}.
  std::uint64_t suppressed = 0;
  if (refused_log_.Allow(&suppressed)) {
    log::Get("fleet")->warn("enrollment refused: {} ({} more refused enrollments not logged)",
                            error.ToString(), suppressed);
  }
}

Result<wire::CertificateGrant> DeviceRegistry::Renew(const std::string& device_id,
                                                     const std::string& csr_pem,
                                                     const std::string& presented_key_sha256,
                                                     RenewalRateLimited* retry_after) {
  if (!ca_) return NoCa();
  const std::int64_t now_s = clock_->NowS();
  auto cert = ca_->Issue(csr_pem, device_id, options_.certificate_validity, now_s);
  if (!cert.ok()) return cert.error();
  // Renewal extends an identity; it must not move it to a key the device never proved it held
  // at enrollment (a stolen certificate would otherwise be re-keyed by the thief).
  if (presented_key_sha256.empty() || cert->public_key_sha256 != presented_key_sha256) {
    return MakeError(ErrorKind::kPermissionDenied, "renewal_key_mismatch",
                     "a renewal request must be signed by the key of the presented certificate");
  }
  const std::int64_t overlap_end = now_s + options_.renew_overlap.count();
  auto grant = db_->WithDurableTransaction([&](store::Connection& conn) -> Result<wire::CertificateGrant> {
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        conn.Query("device_status_last_cert",
                                   "SELECT d.status, (SELECT MAX(issued_at) FROM device_certificates "
                                   "c WHERE c.device_id = d.id) FROM devices d WHERE d.id = ?",
                                   device_id));
    EP_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return NotFound(device_id);
    if (s.Text(0) != "active") {
      return MakeError(ErrorKind::kPermissionDenied, "device_revoked",
                       "device '" + device_id + "' is revoked");
    }
    const std::int64_t last_ms = s.OptInt64(1).value_or(0);
    EP_RETURN_IF_ERROR(s.Reset());
    const std::int64_t next_ms = last_ms + options_.renew_min_interval.count() * 1000;
    if (clock_->NowMs() < next_ms) {
      if (retry_after) retry_after->retry_after_s = (next_ms - clock_->NowMs() + 999) / 1000;
      return MakeError(ErrorKind::kResourceExhausted, "renewal_rate_limited",
                       "this device was issued a certificate less than " +
                           std::to_string(options_.renew_min_interval.count()) + " s ago");
    }
    // The previous certificates end after the overlap: long enough for the agent to reconnect
    // with the new one, short enough that a copied old certificate soon stops working.
    EP_RETURN_IF_ERROR(conn.Execute("device_certificates_overlap",
                                    "UPDATE device_certificates SET not_after = ? "
                                    "WHERE device_id = ? AND not_after > ?",
                                    overlap_end, device_id, overlap_end));
    EP_ASSIGN_OR_RETURN(auto g, IssueAndRecord(conn, device_id, *cert));
    EP_RETURN_IF_ERROR(audit_->Record(conn, "device:" + device_id, "device.renew", device_id,
                                      Outcome::kOk, "serial=" + cert->serial_hex));
    return g;
  });
  if (!grant.ok()) return grant;
  std::unique_lock lock(cache_mu_);
  ++cache_generation_;
  for (auto& [fingerprint, entry] : cert_cache_) {
    if (entry.device_id == device_id && fingerprint != cert->fingerprint_sha256) {
      entry.not_after_s = std::min(entry.not_after_s, overlap_end);
    }
  }
  return grant;
}

Status DeviceRegistry::Revoke(const std::string& device_id, const std::string& actor) {
  // Durable at commit: a revocation that a power cut could undo would re-admit the device.
  auto r = db_->WithDurableTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto rows,
                        conn.Execute("device_revoke",
                                     "UPDATE devices SET status = 'revoked', revoked_at = ? "
                                     "WHERE id = ? AND status = 'active'",
                                     clock_->NowMs(), device_id));
    if (rows == 0) {
      EP_ASSIGN_OR_RETURN(store::Statement s,
                          conn.Query("device_exists", "SELECT 1 FROM devices WHERE id = ?", device_id));
      EP_ASSIGN_OR_RETURN(bool found, s.Step());
      if (!found) return NotFound(device_id);
      return MakeError(ErrorKind::kConflict, "device_already_revoked",
                       "device '" + device_id + "' is already revoked");
    }
    return audit_->Record(conn, actor, "device.revoke", device_id, Outcome::kOk);
  });
  if (!r.ok()) return r;
  std::unique_lock lock(cache_mu_);
  ++cache_generation_;
  std::erase_if(cert_cache_, [&](const auto& kv) { return kv.second.device_id == device_id; });
  return Ok();
}

Result<std::string> DeviceRegistry::AuthenticateCertificate(const tls::PeerCertificate& cert) {
  if (!cert.verified) {
    return MakeError(ErrorKind::kUnauthenticated, "certificate_not_verified",
                     "the client certificate did not verify against the device CA");
  }
  const std::int64_t now_ms = clock_->NowMs();
  const std::int64_t now_s = now_ms / 1000;
  if (cert.not_after <= now_s) {
    return MakeError(ErrorKind::kUnauthenticated, "certificate_expired",
                     "the client certificate has expired");
  }
  std::uint64_t generation = 0;
  {
    std::shared_lock lock(cache_mu_);
    auto it = cert_cache_.find(cert.fingerprint_sha256);
    if (it != cert_cache_.end() && it->second.not_after_s > now_s &&
        now_ms - it->second.cached_at_ms < options_.cache_ttl.count() &&
        it->second.device_id == cert.subject_cn) {
      return it->second.device_id;
    }
    generation = cache_generation_;
  }
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("device_by_fingerprint",
                                   "SELECT c.device_id, c.not_after, d.status FROM "
                                   "device_certificates c JOIN devices d ON d.id = c.device_id "
                                   "WHERE c.fingerprint = ?",
                                   cert.fingerprint_sha256));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found || s.Text(0) != cert.subject_cn) {
    return MakeError(ErrorKind::kUnauthenticated, "unknown_device",
                     "the client certificate was not issued to an enrolled device");
  }
  if (s.Text(2) != "active") {
    return MakeError(ErrorKind::kPermissionDenied, "device_revoked",
                     "device '" + s.Text(0) + "' is revoked");
  }
  if (s.Int64(1) <= now_s) {
    return MakeError(ErrorKind::kUnauthenticated, "certificate_expired",
                     "the client certificate has expired");
  }
  CachedCert entry{s.Text(0), s.Int64(1), now_ms};
  if (options_.before_cache_insert) options_.before_cache_insert();
  std::unique_lock lock(cache_mu_);
  // A revocation or renewal committed since our read may have made this answer stale: serve it
  // this once (it was true when read, like a request that arrived a moment earlier) but do not
  // cache it, or the revoked device would pass every later check from the cache.
  if (generation != cache_generation_) return entry.device_id;
  if (cert_cache_.size() > 200000) cert_cache_.clear();
  cert_cache_[cert.fingerprint_sha256] = entry;
  return entry.device_id;
}

}  // namespace edgeprune::fleet
