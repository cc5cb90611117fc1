#include "server/fleet/device_registry.hpp"

#include <algorithm>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/budget.hpp"
#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::fleet {
namespace {

constexpr const char* kDeviceColumns =
    "SELECT d.id, d.hostname, d.status, d.tags, d.caps, d.enrolled_at, d.revoked_at, "
    "d.last_seen_at, d.agent_state, d.installed_variant, d.budget, "
    "(SELECT MAX(not_after) FROM device_certificates c WHERE c.device_id = d.id) FROM devices d ";

Result<DeviceRecord> DeviceRow(const store::Statement& s) {
  DeviceRecord d;
  d.id = s.Text(0);
  d.hostname = s.Text(1);
  d.status = s.Text(2);
  d.tags = TagsFromJsonText(s.Text(3));
  if (auto caps = json::ParseObject(s.Text(4)); caps.ok()) {
    auto parsed = wire::CapsFromJson(*caps);
    if (parsed.ok()) d.caps = *parsed;
  }
  d.enrolled_at_ms = s.Int64(5);
  d.revoked_at_ms = s.OptInt64(6);
  d.last_seen_ms = s.OptInt64(7);
  d.agent_state = s.Text(8);
  d.installed_variant = s.OptText(9);
  if (auto text = s.OptText(10)) {
    if (auto o = json::ParseObject(*text); o.ok()) {
      auto b = wire::BudgetFromJson(*o);
      if (b.ok()) d.budget = *b;
    }
  }
  d.cert_not_after_s = s.OptInt64(11);
  return d;
}

Error NotFound(const std::string& id) {
  return MakeError(ErrorKind::kNotFound, "device_not_found", "no device with id '" + id + "'");
}

Error NoCa() {
  return MakeError(ErrorKind::kUnavailable, "enrollment_unavailable",
                   "this server has no device CA configured (fleet.device_ca_cert)");
}

std::string NewDeviceId() { return "dev-" + crypto::Sha256Hex(crypto::RandomToken(16)).substr(0, 16); }

}  // namespace

Result<DevicePatch> DevicePatch::FromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(wire::RejectUnknownKeys(o, {"tags", "caps"}, "device patch"));
  DevicePatch p;
  if (o.contains("tags")) {
    EP_ASSIGN_OR_RETURN(auto tags, wire::ReadStringList(o, "tags", 32, 64));
    EP_RETURN_IF_ERROR(ValidateTags(tags));
    p.tags = std::move(tags);
  }
  if (o.contains("caps")) {
    EP_ASSIGN_OR_RETURN(auto caps_obj, json::GetObject(o, "caps"));
    auto caps = wire::CapsFromJson(caps_obj);
    if (!caps.ok()) return caps.error().WithContext("caps");
    p.caps = *caps;
  }
  if (!p.tags && !p.caps) {
    return MakeError(ErrorKind::kInvalidArgument, "empty_patch",
                     "a device patch needs 'tags' or 'caps'");
  }
  return p;
}

DeviceRegistry::DeviceRegistry(std::shared_ptr<store::Database> db,
                               std::shared_ptr<const Clock> clock,
                               std::shared_ptr<const AuditLog> audit,
                               std::shared_ptr<const DeviceCa> ca,
                               std::shared_ptr<const EnrollmentTokens> tokens,
                               RegistryOptions options)
    : db_(std::move(db)),
      clock_(std::move(clock)),
      audit_(std::move(audit)),
      ca_(std::move(ca)),
      tokens_(std::move(tokens)),
      options_(std::move(options)) {}

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
  // Durable: a spent use of a one-time token must stay spent after a power cut.
  auto grant = db_->WithDurableTransaction([&](store::Connection& conn) -> Result<wire::CertificateGrant> {
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
  });
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
  const std::int64_t now_s = clock_->NowS();
  if (cert.not_after <= now_s) {
    return MakeError(ErrorKind::kUnauthenticated, "certificate_expired",
                     "the client certificate has expired");
  }
  std::uint64_t generation = 0;
  {
    std::shared_lock lock(cache_mu_);
    auto it = cert_cache_.find(cert.fingerprint_sha256);
    if (it != cert_cache_.end() && it->second.not_after_s > now_s &&
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
  CachedCert entry{s.Text(0), s.Int64(1)};
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

Result<DeviceRecord> DeviceRegistry::Get(const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s, lease->Query("device_get",
                                                       std::string(kDeviceColumns) + "WHERE d.id = ?",
                                                       device_id));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return NotFound(device_id);
  return DeviceRow(s);
}

Result<std::vector<DeviceRecord>> DeviceRegistry::List(const DeviceListQuery& q, int limit) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(
      store::Statement s,
      lease->Query("device_list",
                   std::string(kDeviceColumns) +
                       "WHERE (?1 IS NULL OR d.id > ?1) "
                       "AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(d.tags) WHERE value = ?2)) "
                       "AND (?3 = 1 OR d.status = 'active') ORDER BY d.id LIMIT ?4",
                   q.after_id, q.tag, static_cast<std::int64_t>(q.include_revoked ? 1 : 0),
                   static_cast<std::int64_t>(std::max(0, limit))));
  std::vector<DeviceRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto d, DeviceRow(s));
    out.push_back(std::move(d));
  }
  return out;
}

Result<Budget> DeviceRegistry::RecomputeBudget(store::Connection& conn, const std::string& device_id,
                                               const wire::DeviceCaps& caps) {
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      conn.Query("device_latest_profile",
                                 "SELECT profile FROM device_profiles WHERE device_id = ? "
                                 "ORDER BY id DESC LIMIT 1",
                                 device_id));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return Budget{};
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(s.Text(0)));
  EP_RETURN_IF_ERROR(s.Reset());
  EP_ASSIGN_OR_RETURN(auto profile, wire::ProfileFromJson(o));
  return BudgetFor(profile, caps, options_.budget_policy);
}

Result<DeviceRecord> DeviceRegistry::Patch(const std::string& device_id, const DevicePatch& patch,
                                           const std::string& actor) {
  bool budget_changed = false;
  auto r = db_->WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        conn.Query("device_exists_budget",
                                   "SELECT status, budget FROM devices WHERE id = ?", device_id));
    EP_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return NotFound(device_id);
    const std::string old_budget = s.OptText(1).value_or("");
    EP_RETURN_IF_ERROR(s.Reset());
    std::string detail;
    if (patch.tags) {
      EP_RETURN_IF_ERROR(conn.Execute("device_set_tags", "UPDATE devices SET tags = ? WHERE id = ?",
                                      TagsToJsonText(*patch.tags), device_id));
      detail += "tags=" + TagsToJsonText(*patch.tags) + " ";
    }
    if (patch.caps) {
      const std::string caps_text = boost::json::serialize(wire::ToJson(*patch.caps));
      EP_RETURN_IF_ERROR(conn.Execute("device_set_caps", "UPDATE devices SET caps = ? WHERE id = ?",
                                      caps_text, device_id));
      EP_ASSIGN_OR_RETURN(Budget budget, RecomputeBudget(conn, device_id, *patch.caps));
      if (!budget.Unbounded()) {
        const std::string budget_text = boost::json::serialize(wire::ToJson(budget));
        EP_RETURN_IF_ERROR(conn.Execute("device_set_budget",
                                        "UPDATE devices SET budget = ? WHERE id = ?",
                                        budget_text, device_id));
        budget_changed = budget_text != old_budget;
      }
      detail += "caps=" + caps_text;
    }
    return audit_->Record(conn, actor, "device.patch", device_id, Outcome::kOk, detail);
  });
  if (!r.ok()) return r.error();
  if (budget_changed) NotifyBudgetChanged(device_id);
  return Get(device_id);
}

Result<Budget> DeviceRegistry::RecordProfile(const std::string& device_id,
                                             const wire::DeviceProfile& profile) {
  bool budget_changed = false;
  auto recorded = db_->WithTransaction([&](store::Connection& conn) -> Result<Budget> {
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        conn.Query("device_caps",
                                   "SELECT caps, status, budget FROM devices WHERE id = ?",
                                   device_id));
    EP_ASSIGN_OR_RETURN(bool found, s.Step());
    if (!found) return NotFound(device_id);
    wire::DeviceCaps caps;
    if (auto o = json::ParseObject(s.Text(0)); o.ok()) caps = wire::CapsFromJson(*o).value_or({});
    const std::string old_budget = s.OptText(2).value_or("");
    EP_RETURN_IF_ERROR(s.Reset());
    EP_ASSIGN_OR_RETURN(Budget budget, BudgetFor(profile, caps, options_.budget_policy));
    const std::string budget_text = boost::json::serialize(wire::ToJson(budget));
    EP_RETURN_IF_ERROR(conn.Execute(
        "device_profile_insert",
        "INSERT INTO device_profiles (device_id, received_at, profile, budget) VALUES (?, ?, ?, ?)",
        device_id, clock_->NowMs(), boost::json::serialize(wire::ToJson(profile)), budget_text));
    EP_RETURN_IF_ERROR(conn.Execute("device_set_budget", "UPDATE devices SET budget = ? WHERE id = ?",
                                    budget_text, device_id));
    EP_RETURN_IF_ERROR(audit_->Record(conn, "device:" + device_id, "device.profile", device_id,
                                      Outcome::kOk, budget_text));
    budget_changed = budget_text != old_budget;
    return budget;
  });
  if (recorded.ok() && budget_changed) NotifyBudgetChanged(device_id);
  return recorded;
}

Result<std::vector<ProfileRecord>> DeviceRegistry::ProfileHistory(const std::string& device_id,
                                                                  int limit) const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("device_profile_history",
                                   "SELECT received_at, profile, budget FROM device_profiles "
                                   "WHERE device_id = ? ORDER BY id DESC LIMIT ?",
                                   device_id, static_cast<std::int64_t>(std::clamp(limit, 1, 1000))));
  std::vector<ProfileRecord> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    ProfileRecord rec;
    rec.received_at_ms = s.Int64(0);
    EP_ASSIGN_OR_RETURN(auto p, json::ParseObject(s.Text(1)));
    EP_ASSIGN_OR_RETURN(rec.profile, wire::ProfileFromJson(p));
    EP_ASSIGN_OR_RETURN(auto b, json::ParseObject(s.Text(2)));
    EP_ASSIGN_OR_RETURN(rec.budget, wire::BudgetFromJson(b));
    out.push_back(std::move(rec));
  }
  return out;
}

Result<std::optional<ProfileRecord>> DeviceRegistry::LatestProfile(const std::string& device_id) const {
  EP_ASSIGN_OR_RETURN(auto history, ProfileHistory(device_id, 1));
  if (history.empty()) return std::optional<ProfileRecord>();
  return std::optional<ProfileRecord>(std::move(history.front()));
}

Result<std::unordered_map<std::string, std::int64_t>> DeviceRegistry::CountByStatus() const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("device_count_by_status",
                                   "SELECT status, COUNT(*) FROM devices GROUP BY status"));
  std::unordered_map<std::string, std::int64_t> out{{"active", 0}, {"revoked", 0}};
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out[s.Text(0)] = s.Int64(1);
  }
  return out;
}

boost::json::object ToJson(const DeviceRecord& d) {
  boost::json::array tags;
  for (const auto& t : d.tags) tags.emplace_back(t);
  boost::json::object o{{"id", d.id},
                        {"hostname", d.hostname},
                        {"status", d.status},
                        {"tags", std::move(tags)},
                        {"caps", wire::ToJson(d.caps)},
                        {"enrolled_at_ms", d.enrolled_at_ms},
                        {"agent_state", d.agent_state}};
  o["revoked_at_ms"] = d.revoked_at_ms ? boost::json::value(*d.revoked_at_ms) : nullptr;
  o["last_seen_ms"] = d.last_seen_ms ? boost::json::value(*d.last_seen_ms) : nullptr;
  o["installed_variant"] = d.installed_variant ? boost::json::value(*d.installed_variant) : nullptr;
  o["budget"] = d.budget ? boost::json::value(wire::ToJson(*d.budget)) : nullptr;
  o["certificate_not_after"] =
      d.cert_not_after_s ? boost::json::value(*d.cert_not_after_s) : nullptr;
  return o;
}

}  // namespace edgeprune::fleet
