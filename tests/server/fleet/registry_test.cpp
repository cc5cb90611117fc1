#include <gtest/gtest.h>

#include <functional>
#include <utility>

#include "server/support/fleet_test_csr.hpp"
#include "server/fleet/fleet_service.hpp"
#include "server/store/migrator.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

namespace edgeprune::fleet {
namespace {

using std::chrono::seconds;

// Runs on both store backends (a SQLite file, a PostgreSQL database).
class FleetTest : public edgeprune::testing::StoreBackendTest {
 protected:
  void SetUp() override {
    pki_ = edgeprune::testing::MakeTestPki(dir_.path());
    db_ = OpenDatabase();
    ASSERT_NE(db_, nullptr);
    ConfigSchema schema;
    AddFleetConfig(schema);
    auto config = Config::Load(schema, "",
                               {"fleet.device_ca_cert=" + pki_.client_ca.cert,
                                "fleet.device_ca_key=" + pki_.client_ca.key},
                               "");
    ASSERT_TRUE(config.ok()) << config.error().ToString();
    auto fleet = FleetService::Build(*config, db_, nullptr, clock_);
    ASSERT_TRUE(fleet.ok()) << fleet.error().ToString();
    fleet_ = std::move(fleet).value();
  }
  void TearDown() override { fleet_.reset(); }

  std::string NewToken(std::int64_t max_uses = 1, seconds ttl = seconds(3600)) {
    EnrollmentTokenSpec spec;
    spec.max_uses = max_uses;
    spec.ttl = ttl;
    spec.tags = {"site:lab"};
    auto t = fleet_->enrollment_tokens->Create(spec, "token:test");
    EXPECT_TRUE(t.ok());
    return t->secret;
  }
  // Replaces the registry with one built with changed options (test seams).
  bool Rebuild(const std::function<void(RegistryOptions&)>& change) {
    RegistryOptions o;
    change(o);
    fleet_->registry = std::make_shared<DeviceRegistry>(db_, clock_, fleet_->audit, fleet_->ca,
                                                        fleet_->enrollment_tokens, o);
    return fleet_->registry != nullptr;
  }
  std::int64_t DeviceCount() {
    auto list = fleet_->registry->List({}, 1000);
    return list.ok() ? static_cast<std::int64_t>(list->size()) : -1;
  }
  static tls::PeerCertificate PeerOf(const wire::CertificateGrant& g, const std::string& fp) {
    tls::PeerCertificate p;
    p.subject_cn = g.device_id;
    p.fingerprint_sha256 = fp;
    p.not_before = g.not_before;
    p.not_after = g.not_after;
    p.verified = true;
    return p;
  }
  Result<wire::CertificateGrant> Enroll(const std::string& token) {
    return fleet_->registry->Enroll({token, fleet_test::MakeKeyAndCsr().csr_pem, "gw-1"});
  }

  edgeprune::testing::TempDir dir_;
  edgeprune::testing::TestPki pki_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(1'800'000'000'000);
  std::shared_ptr<store::Database> db_;
  std::unique_ptr<FleetService> fleet_;
};

TEST_P(FleetTest, EnrollsWithATokenAndMapsTheCertificateToTheDevice) {
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok()) << grant.error().ToString();
  EXPECT_EQ(grant->device_id.rfind("dev-", 0), 0u);
  EXPECT_EQ(fleet_test::SubjectCnOf(grant->certificate_pem), grant->device_id);
  EXPECT_EQ(grant->not_after - clock_->NowS(), 30 * 24 * 3600);
  auto device = fleet_->registry->Get(grant->device_id);
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->status, "active");
  EXPECT_EQ(device->hostname, "gw-1");
  EXPECT_EQ(device->tags, std::vector<std::string>{"site:lab"}) << "tags come from the token";

  auto fp = CertificateFingerprint(grant->certificate_pem).value();
  auto id = fleet_->registry->AuthenticateCertificate(PeerOf(*grant, fp));
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  EXPECT_EQ(*id, grant->device_id);

  auto audit = fleet_->audit->List({.action = "device.enroll"});
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].outcome, "ok");
  EXPECT_EQ((*audit)[0].target, grant->device_id);
}

TEST_P(FleetTest, UsedUpExpiredAndUnknownTokensCreateNothing) {
  const std::string once = NewToken(1);
  ASSERT_TRUE(Enroll(once).ok());
  auto again = Enroll(once);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "enrollment_token_used_up");
  EXPECT_EQ(again.error().kind, ErrorKind::kPermissionDenied);

  const std::string short_lived = NewToken(5, seconds(60));
  clock_->Advance(std::chrono::minutes(2));
  auto late = Enroll(short_lived);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "enrollment_token_expired");

  auto unknown = Enroll("epe_not-a-real-token");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::kUnauthenticated);

  EXPECT_EQ(DeviceCount(), 1);
  auto denied = fleet_->audit->List({.action = "device.enroll"});
  ASSERT_TRUE(denied.ok());
  int denials = 0;
  for (const auto& e : *denied) denials += e.outcome != "ok";
  // Anonymous failures are logged (rate-limited), never audited: anyone could fill the table.
  EXPECT_EQ(denials, 0);
  EXPECT_EQ(denied->size(), 1u) << "only the successful enrollment";
}

TEST_P(FleetTest, ABadCsrSpendsNoTokenUse) {
  const std::string token = NewToken(1);
  auto bad = fleet_->registry->Enroll({token, "not a csr", "gw"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_csr");
  EXPECT_TRUE(Enroll(token).ok());
}

TEST_P(FleetTest, RevokedExpiredAndUnknownCertificatesAreRefused) {
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok());
  auto fp = CertificateFingerprint(grant->certificate_pem).value();
  ASSERT_TRUE(fleet_->registry->AuthenticateCertificate(PeerOf(*grant, fp)).ok());  // cached now

  auto stranger = PeerOf(*grant, std::string(64, 'a'));
  EXPECT_EQ(fleet_->registry->AuthenticateCertificate(stranger).error().code, "unknown_device");
  auto wrong_cn = PeerOf(*grant, fp);
  wrong_cn.subject_cn = "dev-other";
  EXPECT_EQ(fleet_->registry->AuthenticateCertificate(wrong_cn).error().code, "unknown_device");
  auto unverified = PeerOf(*grant, fp);
  unverified.verified = false;
  EXPECT_FALSE(fleet_->registry->AuthenticateCertificate(unverified).ok());

  ASSERT_TRUE(fleet_->registry->Revoke(grant->device_id, "token:admin").ok());
  auto revoked = fleet_->registry->AuthenticateCertificate(PeerOf(*grant, fp));
  ASSERT_FALSE(revoked.ok());
  EXPECT_EQ(revoked.error().code, "device_revoked");
  EXPECT_EQ(fleet_->registry->Revoke(grant->device_id, "token:admin").error().code, "device_already_revoked");
  EXPECT_EQ(fleet_->registry->Revoke("dev-none", "token:admin").error().code, "device_not_found");

  auto other = Enroll(NewToken());
  ASSERT_TRUE(other.ok());
  auto ofp = CertificateFingerprint(other->certificate_pem).value();
  clock_->Advance(seconds(31 * 24 * 3600));
  auto expired = fleet_->registry->AuthenticateCertificate(PeerOf(*other, ofp));
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, "certificate_expired");
}

TEST_P(FleetTest, RenewalIssuesANewCertificateForTheSameDevice) {
  auto kc = fleet_test::MakeKeyAndCsr();
  auto grant = fleet_->registry->Enroll({NewToken(), kc.csr_pem, "gw-1"});
  ASSERT_TRUE(grant.ok());
  const std::string key_hash = fleet_test::PublicKeySha256Of(kc.key_pem);
  ASSERT_EQ(key_hash, fleet_test::PublicKeySha256Of(grant->certificate_pem));
  clock_->Advance(seconds(20 * 24 * 3600));
  auto renewed = fleet_->registry->Renew(grant->device_id, fleet_test::CsrFor(kc.key_pem), key_hash);
  ASSERT_TRUE(renewed.ok()) << renewed.error().ToString();
  EXPECT_EQ(renewed->device_id, grant->device_id);
  EXPECT_GT(renewed->not_after, grant->not_after);
  auto fp = CertificateFingerprint(renewed->certificate_pem).value();
  EXPECT_EQ(fleet_->registry->AuthenticateCertificate(PeerOf(*renewed, fp)).value(), grant->device_id);
  ASSERT_TRUE(fleet_->registry->Revoke(grant->device_id, "token:a").ok());
  clock_->Advance(seconds(2 * 3600));
  EXPECT_EQ(fleet_->registry->Renew(grant->device_id, fleet_test::CsrFor(kc.key_pem), key_hash)
                .error()
                .code,
            "device_revoked");
}

// Issue 13 item 5: same key only, rate-limited, and the old certificate ends after the overlap.
TEST_P(FleetTest, RenewalKeepsTheKeyIsRateLimitedAndRetiresTheOldCertificate) {
  auto kc = fleet_test::MakeKeyAndCsr();
  auto grant = fleet_->registry->Enroll({NewToken(), kc.csr_pem, "gw-1"});
  ASSERT_TRUE(grant.ok());
  const std::string key_hash = fleet_test::PublicKeySha256Of(kc.key_pem);
  const std::string old_fp = CertificateFingerprint(grant->certificate_pem).value();
  ASSERT_TRUE(fleet_->registry->AuthenticateCertificate(PeerOf(*grant, old_fp)).ok());  // cached

  // Within an hour of the enrollment's certificate: 429 with the wait, nothing issued.
  clock_->Advance(seconds(600));
  RenewalRateLimited limited;
  auto soon = fleet_->registry->Renew(grant->device_id, fleet_test::CsrFor(kc.key_pem), key_hash,
                                      &limited);
  ASSERT_FALSE(soon.ok());
  EXPECT_EQ(soon.error().code, "renewal_rate_limited");
  EXPECT_EQ(soon.error().kind, ErrorKind::kResourceExhausted);
  EXPECT_EQ(limited.retry_after_s, 3000);

  clock_->Advance(seconds(3000));
  auto other_key = fleet_->registry->Renew(grant->device_id, fleet_test::MakeKeyAndCsr().csr_pem,
                                           key_hash);
  ASSERT_FALSE(other_key.ok());
  EXPECT_EQ(other_key.error().code, "renewal_key_mismatch");
  EXPECT_EQ(other_key.error().kind, ErrorKind::kPermissionDenied);

  auto renewed = fleet_->registry->Renew(grant->device_id, fleet_test::CsrFor(kc.key_pem), key_hash);
  ASSERT_TRUE(renewed.ok()) << renewed.error().ToString();
  auto again = fleet_->registry->Renew(grant->device_id, fleet_test::CsrFor(kc.key_pem), key_hash);
  EXPECT_EQ(again.error().code, "renewal_rate_limited") << "52 certificates in 0.4 s no more";

  // The old certificate works through the overlap (600 s by default), from cache and database.
  clock_->Advance(seconds(599));
  EXPECT_TRUE(fleet_->registry->AuthenticateCertificate(PeerOf(*grant, old_fp)).ok());
  clock_->Advance(seconds(2));
  auto old = fleet_->registry->AuthenticateCertificate(PeerOf(*grant, old_fp));
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().code, "certificate_expired");
  auto new_fp = CertificateFingerprint(renewed->certificate_pem).value();
  EXPECT_EQ(fleet_->registry->AuthenticateCertificate(PeerOf(*renewed, new_fp)).value(),
            grant->device_id);
}

// Issue 13 item 10: a lookup that read "active" before a revocation committed used to put the
// device back into the cache after the revocation had cleared it. The seam runs the revocation
// exactly in that window.
TEST_P(FleetTest, ARevocationDuringALookupIsNotUndoneByTheCache) {
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok());
  const std::string fp = CertificateFingerprint(grant->certificate_pem).value();
  ASSERT_TRUE(Rebuild([this, id = grant->device_id](RegistryOptions& o) {
    o.before_cache_insert = [this, id, once = std::make_shared<bool>(false)] {
      if (std::exchange(*once, true)) return;
      ASSERT_TRUE(fleet_->registry->Revoke(id, "token:test").ok());
    };
  }));
  auto during = fleet_->registry->AuthenticateCertificate(PeerOf(*grant, fp));
  EXPECT_TRUE(during.ok()) << "read before the revocation committed: served once";
  auto after = fleet_->registry->AuthenticateCertificate(PeerOf(*grant, fp));
  ASSERT_FALSE(after.ok()) << "a stale cache entry would let the revoked device in";
  EXPECT_EQ(after.error().code, "device_revoked");
}

// Issue 18: a second server process on the same database (its own handle and registry) keeps an
// accepted certificate in memory for at most cache_ttl (500 ms by default), so a revocation made
// through this process takes effect there within it.
TEST_P(FleetTest, ARevocationThroughAnotherProcessTakesEffectThereWithinTheCacheTtl) {
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok());
  const std::string fp = CertificateFingerprint(grant->certificate_pem).value();
  auto other_db = Backend().Open(false);
  ASSERT_NE(other_db, nullptr);
  RegistryOptions options;
  ASSERT_EQ(options.cache_ttl, std::chrono::milliseconds(500));
  DeviceRegistry replica_b(other_db, clock_, fleet_->audit, fleet_->ca, fleet_->enrollment_tokens,
                           options);
  ASSERT_TRUE(replica_b.AuthenticateCertificate(PeerOf(*grant, fp)).ok());  // cached at t

  ASSERT_TRUE(fleet_->registry->Revoke(grant->device_id, "token:admin").ok());
  clock_->Advance(std::chrono::milliseconds(499));
  EXPECT_TRUE(replica_b.AuthenticateCertificate(PeerOf(*grant, fp)).ok())
      << "inside the TTL the other process answers from memory";
  clock_->Advance(std::chrono::milliseconds(1));
  auto refused = replica_b.AuthenticateCertificate(PeerOf(*grant, fp));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "device_revoked");

  // cache_ttl 0: every lookup asks the database.
  options.cache_ttl = std::chrono::milliseconds(0);
  auto second = Enroll(NewToken());
  ASSERT_TRUE(second.ok());
  const std::string fp2 = CertificateFingerprint(second->certificate_pem).value();
  DeviceRegistry uncached(other_db, clock_, fleet_->audit, fleet_->ca, fleet_->enrollment_tokens,
                          options);
  ASSERT_TRUE(uncached.AuthenticateCertificate(PeerOf(*second, fp2)).ok());
  ASSERT_TRUE(fleet_->registry->Revoke(second->device_id, "token:admin").ok());
  EXPECT_EQ(uncached.AuthenticateCertificate(PeerOf(*second, fp2)).error().code, "device_revoked");
}

wire::DeviceProfile SampleProfile() {
  wire::DeviceProfile p;
  p.arch = "x86_64";
  p.cpu_model = "cpu";
  p.cores = 2;
  p.ram_total_bytes = 4LL << 30;
  p.ram_available_bytes = 2LL << 30;
  p.disk_free_bytes = 50LL << 30;
  p.os = "Linux";
  p.torch_version = "1.13.1";
  p.agent_version = "0.1.0";
  p.bench = {20, 5, 0.1, 8, 1};
  return p;
}

TEST_P(FleetTest, ProfilesKeepHistoryAndOperatorCapsLowerTheBudget) {
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok());
  auto first = fleet_->registry->RecordProfile(grant->device_id, SampleProfile());
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  clock_->Advance(seconds(5));
  auto p2 = SampleProfile();
  p2.ram_available_bytes = 1LL << 30;
  auto second = fleet_->registry->RecordProfile(grant->device_id, p2);
  ASSERT_TRUE(second.ok());
  EXPECT_LT(*second->max_param_bytes, *first->max_param_bytes);
  auto history = fleet_->registry->ProfileHistory(grant->device_id, 10);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].profile.ram_available_bytes, 1LL << 30) << "newest first";

  DevicePatch patch;
  patch.caps = wire::DeviceCaps{std::nullopt, 10.0, 1 << 20};
  patch.tags = std::vector<std::string>{"line:2"};
  auto patched = fleet_->registry->Patch(grant->device_id, patch, "token:op");
  ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  ASSERT_TRUE(patched->budget);
  EXPECT_EQ(*patched->budget->max_param_bytes, 1 << 20);
  EXPECT_DOUBLE_EQ(*patched->budget->max_latency_ms, 10.0);
  EXPECT_LT(*patched->budget->max_macs, *second->max_macs);
  EXPECT_EQ(patched->tags, std::vector<std::string>{"line:2"});

  auto by_tag = fleet_->registry->List({.tag = "line:2"}, 10);
  ASSERT_TRUE(by_tag.ok());
  EXPECT_EQ(by_tag->size(), 1u);
  EXPECT_TRUE(fleet_->registry->List({.tag = "site:lab"}, 10)->empty());
}

TEST_P(FleetTest, ABudgetChangeIsAnnouncedAfterCommitAndOnlyWhenItChanged) {
  std::vector<std::string> announced;
  fleet_->registry->OnBudgetChanged([&](const std::string& id) {
    // Called after the commit: the new budget is already visible.
    auto d = fleet_->registry->Get(id);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(d->budget);
    announced.push_back(id);
  });
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok());
  const std::string id = grant->device_id;
  ASSERT_TRUE(fleet_->registry->RecordProfile(id, SampleProfile()).ok());
  EXPECT_EQ(announced, std::vector<std::string>{id}) << "the first budget is a change";
  ASSERT_TRUE(fleet_->registry->RecordProfile(id, SampleProfile()).ok());
  EXPECT_EQ(announced.size(), 1u) << "the same profile gives the same budget: no announcement";

  DevicePatch tags_only;
  tags_only.tags = std::vector<std::string>{"line:3"};
  ASSERT_TRUE(fleet_->registry->Patch(id, tags_only, "token:op").ok());
  EXPECT_EQ(announced.size(), 1u) << "tags do not touch the budget";

  DevicePatch caps;
  caps.caps = wire::DeviceCaps{std::nullopt, 5.0, 1 << 18};
  ASSERT_TRUE(fleet_->registry->Patch(id, caps, "token:op").ok());
  EXPECT_EQ(announced.size(), 2u) << "tighter caps lower the budget";

  // A refused profile changes nothing and announces nothing.
  EXPECT_FALSE(fleet_->registry->RecordProfile("dev-unknown", SampleProfile()).ok());
  EXPECT_EQ(announced.size(), 2u);
}

TEST_P(FleetTest, ADeviceThatStopsHeartbeatingGoesOfflineAndSurvivesARestart) {
  auto grant = Enroll(NewToken());
  ASSERT_TRUE(grant.ok());
  auto& hb = *fleet_->heartbeats;
  EXPECT_EQ(hb.LivenessOf(grant->device_id), Liveness::kNeverSeen);
  hb.Record(grant->device_id, {"poll", std::nullopt, 5, 1 << 20});
  EXPECT_EQ(hb.LivenessOf(grant->device_id), Liveness::kOnline);
  clock_->Advance(seconds(30));  // exactly 3 intervals of 10 s: still online
  EXPECT_EQ(hb.LivenessOf(grant->device_id), Liveness::kOnline);
  clock_->Advance(seconds(1));
  EXPECT_EQ(hb.LivenessOf(grant->device_id), Liveness::kOffline);
  EXPECT_EQ(hb.Counts().offline, 1);

  ASSERT_EQ(hb.Flush(*db_).value(), 1u);
  EXPECT_EQ(hb.Flush(*db_).value(), 0u) << "only changed entries are written";
  HeartbeatTracker restarted(clock_, seconds(10));
  ASSERT_TRUE(restarted.LoadFrom(*db_).ok());
  EXPECT_EQ(restarted.LivenessOf(grant->device_id), Liveness::kOffline);
  EXPECT_EQ(restarted.Get(grant->device_id)->agent_state, "poll");
}

TEST_P(FleetTest, ApiTokensAreHashedRoleBoundAndRevocable) {
  auto admin = fleet_->api_tokens->EnsureAdmin();
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(admin->has_value());
  EXPECT_FALSE(fleet_->api_tokens->EnsureAdmin()->has_value()) << "only on an empty database";

  auto viewer = fleet_->api_tokens->Create("dash", Role::kViewer, "token:bootstrap-admin");
  ASSERT_TRUE(viewer.ok());
  auto who = fleet_->api_tokens->Authenticate(viewer->secret);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->name, "dash");
  EXPECT_EQ(who->role, Role::kViewer);
  EXPECT_EQ(fleet_->api_tokens->Create("dash", Role::kAdmin, "x").error().code, "token_name_taken");
  EXPECT_EQ(fleet_->api_tokens->Create("bad name!", Role::kAdmin, "x").error().code,
            "invalid_token_name");

  // Only the hash is stored.
  auto lease = db_->Acquire();
  ASSERT_TRUE(lease.ok());
  auto s = (*lease)->Query("t", "SELECT COUNT(*) FROM api_tokens WHERE token_hash = ?", viewer->secret);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->Step().value());
  EXPECT_EQ(s->Int64(0), 0);

  ASSERT_TRUE(fleet_->api_tokens->Revoke("dash", "token:bootstrap-admin").ok());
  EXPECT_EQ(fleet_->api_tokens->Authenticate(viewer->secret).error().kind, ErrorKind::kUnauthenticated);

  // Issue 13 item 7: with every admin token revoked, no new bootstrap secret is made.
  ASSERT_TRUE(fleet_->api_tokens->Revoke("bootstrap-admin", "token:bootstrap-admin").ok());
  auto again = fleet_->api_tokens->EnsureAdmin();
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_FALSE(again->has_value()) << "a revoked admin does not re-issue the bootstrap secret";
}

EDGEPRUNE_STORE_BACKENDS(FleetTest);

}  // namespace
}  // namespace edgeprune::fleet
