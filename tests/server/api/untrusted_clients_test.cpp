// The fleet API against untrusted clients (issue 13), over real TLS and SQLite: what anonymous
// and enrolled clients can no longer do, and the operator's view of enrollment tokens.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>

#include "edgeprune/common/fs.hpp"
#include "server/support/enroll_fixture.hpp"
#include "server/support/fleet_test_csr.hpp"
#include "server/fleet/device_ca.hpp"
#include "support/capture_stderr.hpp"

namespace edgeprune::fleet_test {
namespace {

using std::chrono::seconds;

std::string EnrollBody(const std::string& token, const std::string& csr, const std::string& host) {
  return boost::json::serialize(
      boost::json::object{{"token", token}, {"csr_pem", csr}, {"hostname", host}});
}

std::string CodeOf(const Reply& r) {
  if (!r.body.contains("error")) return "<none: " + r.raw + ">";
  return std::string(r.body.at("error").as_object().at("code").as_string());
}

class UntrustedClientsTest : public EnrollFixture {
 protected:
  std::int64_t AuditRows() {
    auto lease = db_->Acquire();
    auto s = (*lease)->Query("n", "SELECT COUNT(*) FROM audit_log");
    EXPECT_TRUE(s.ok() && s->Step().value_or(false));
    return s->Int64(0);
  }
};

// Items 4 and 8: junk enrollments create nothing, fill no audit table, forge no log line.
TEST_F(UntrustedClientsTest, FailedAnonymousEnrollmentsWriteNoAuditRowsAndNoForgedLines) {
  const std::string token = NewEnrollmentToken(5);
  const auto audit_before = AuditRows();
  auto client = Client();
  auto kc = MakeKeyAndCsr();
  for (const char* host : {"gw\n2026-12-04T00:00:00.000 info  [fleet] enrolled device dev-x",
                           "gw\r1", "gw\x1b[2J", "gw 1", "gw/1"}) {
    auto r = Call(*client, "POST", "/agent/v1/enroll", EnrollBody(token, kc.csr_pem, host));
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_EQ(CodeOf(r), "invalid_field") << r.raw;
    EXPECT_NE(r.raw.find("hostname"), std::string::npos) << r.raw;
  }
  for (int i = 0; i < 20; ++i) {
    auto r = Call(*client, "POST", "/agent/v1/enroll",
                  EnrollBody("epe_junk" + std::to_string(i), kc.csr_pem, "gw"));
    EXPECT_EQ(r.status, 401) << r.raw;
  }
  auto bad_csr = Call(*client, "POST", "/agent/v1/enroll", EnrollBody(token, "junk", "gw"));
  EXPECT_EQ(CodeOf(bad_csr), "invalid_csr");
  EXPECT_EQ(DeviceCount(), 0);
  EXPECT_EQ(AuditRows(), audit_before) << "anonymous failures are logged, not audited";
  auto ok = Call(*client, "POST", "/agent/v1/enroll", EnrollBody(token, kc.csr_pem, "gw-1.lab_2"));
  EXPECT_EQ(ok.status, 201) << ok.raw;
  EXPECT_EQ(AuditRows(), audit_before + 1) << "the successful enrollment is";
}

// Item 4: enrollment tokens can be listed (never their secret) and revoked, both audited.
TEST_F(UntrustedClientsTest, EnrollmentTokensAreListedWithoutSecretsAndRevocable) {
  const std::string secret = NewEnrollmentToken(100000, 365 * 24 * 3600);
  auto list = Operator("GET", "/api/v1/enrollment-tokens");
  ASSERT_EQ(list.status, 200) << list.raw;
  auto& items = list.body.at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(list.raw.find(secret), std::string::npos);
  EXPECT_EQ(list.raw.find(secret.substr(4, 16)), std::string::npos);
  EXPECT_FALSE(items[0].as_object().contains("token"));
  EXPECT_EQ(items[0].as_object().at("max_uses").as_int64(), 100000);
  EXPECT_TRUE(items[0].as_object().at("revoked_at_ms").is_null());
  const std::string id = std::to_string(items[0].as_object().at("id").as_int64());

  auto viewer_secret = Operator("POST", "/api/v1/tokens", R"({"name":"dash","role":"viewer"})");
  ASSERT_EQ(viewer_secret.status, 201);
  const std::string viewer(viewer_secret.body.at("token").as_string());
  EXPECT_EQ(Operator("GET", "/api/v1/enrollment-tokens", "", viewer).status, 403);
  EXPECT_EQ(Operator("DELETE", "/api/v1/enrollment-tokens/" + id, "", viewer).status, 403);

  auto revoked = Operator("DELETE", "/api/v1/enrollment-tokens/" + id);
  EXPECT_EQ(revoked.status, 200) << revoked.raw;
  auto again = Operator("DELETE", "/api/v1/enrollment-tokens/" + id);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(CodeOf(again), "enrollment_token_revoked");
  EXPECT_EQ(CodeOf(Operator("DELETE", "/api/v1/enrollment-tokens/999")), "enrollment_token_not_found");
  EXPECT_EQ(CodeOf(Operator("DELETE", "/api/v1/enrollment-tokens/1e3")), "invalid_parameter");

  auto client = Client();
  auto refused = Call(*client, "POST", "/agent/v1/enroll",
                      EnrollBody(secret, MakeKeyAndCsr().csr_pem, "gw"));
  EXPECT_EQ(refused.status, 403) << refused.raw;
  EXPECT_EQ(CodeOf(refused), "enrollment_token_revoked");
  EXPECT_EQ(DeviceCount(), 0);
  auto after = Operator("GET", "/api/v1/enrollment-tokens");
  EXPECT_FALSE(after.body.at("items").as_array()[0].as_object().at("revoked_at_ms").is_null());

  auto audit = Operator("GET", "/api/v1/audit?action=enrollment_token.revoke");
  ASSERT_EQ(audit.status, 200);
  std::map<std::string, int> outcomes;
  for (const auto& e : audit.body.at("items").as_array()) {
    ++outcomes[std::string(e.as_object().at("outcome").as_string())];
  }
  EXPECT_EQ(outcomes["ok"], 1);
  EXPECT_EQ(outcomes["failed"], 3) << "already revoked, unknown, malformed id";
  auto denied = Operator("GET", "/api/v1/audit?action=request.denied");
  EXPECT_NE(denied.raw.find("DELETE /api/v1/enrollment-tokens/" + id), std::string::npos)
      << "the viewer's attempt: " << denied.raw;
}

// Item 9: the device CA key gets the signing key's check.
TEST_F(UntrustedClientsTest, AGroupReadableDeviceCaKeyIsReported) {
  const std::string key = dir_.File("exposed-ca.key");
  std::filesystem::copy_file(pki_.client_ca.key, key);
  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);
  edgeprune::testing::CaptureStderr capture(dir_.File("stderr.txt"));
  ASSERT_TRUE(fleet::DeviceCa::Load(pki_.client_ca.cert, key).ok());
  std::string text = capture.Stop();
  EXPECT_NE(text.find("device CA key"), std::string::npos) << text;
  EXPECT_NE(text.find("640"), std::string::npos) << text;

  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  edgeprune::testing::CaptureStderr quiet(dir_.File("stderr2.txt"));
  ASSERT_TRUE(fleet::DeviceCa::Load(pki_.client_ca.cert, key).ok());
  text = quiet.Stop();
  EXPECT_EQ(text.find("device CA key"), std::string::npos) << text;
}

class RateLimitedTest : public UntrustedClientsTest {
 protected:
  RateLimitedTest() { extra_config_ = {"fleet.enroll_per_minute=1", "fleet.enroll_burst=3"}; }
};

// Items 1 and 5: enrollment and renewal answer 429 with Retry-After past their limits.
TEST_F(RateLimitedTest, EnrollmentAndRenewalAreRateLimitedWith429AndRetryAfter) {
  const std::string token = NewEnrollmentToken(100);
  auto client = Client();
  auto send = [&](const std::string& body) {
    auto r = client->Send({"POST", "/agent/v1/enroll", {{"Content-Type", "application/json"}}, body});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : http::ClientResponse{};
  };
  auto kc = MakeKeyAndCsr();
  auto first = send(EnrollBody(token, kc.csr_pem, "gw"));
  ASSERT_EQ(first.status, 201) << first.body;
  for (int i = 0; i < 2; ++i) EXPECT_EQ(send(EnrollBody("epe_junk", kc.csr_pem, "gw")).status, 401);
  auto limited = send(EnrollBody(token, MakeKeyAndCsr().csr_pem, "gw"));
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_NE(limited.body.find("enrollment_rate_limited"), std::string::npos);
  const int wait = std::atoi(limited.Header("retry-after").c_str());
  EXPECT_GE(wait, 1);
  EXPECT_LE(wait, 60);
  EXPECT_EQ(DeviceCount(), 1);

  // Renewal: a device cert + key on disk, then the same key, too soon, and another key.
  auto grant = json::ParseObject(first.body);
  ASSERT_TRUE(grant.ok());
  const std::string cert = dir_.WriteFile("d.crt", std::string((*grant)["certificate_pem"].as_string()));
  const std::string key = dir_.File("d.key");
  ASSERT_TRUE(fs::WriteFileAtomic(key, kc.key_pem, 0600).ok());
  auto device = Client(cert, key);
  auto renew = [&](const std::string& csr) {
    auto r = device->Send({"POST", "/agent/v1/renew", {{"Content-Type", "application/json"}},
                           boost::json::serialize(boost::json::object{{"csr_pem", csr}})});
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : http::ClientResponse{};
  };
  auto soon = renew(CsrFor(kc.key_pem));
  EXPECT_EQ(soon.status, 429) << soon.body;
  EXPECT_NE(soon.body.find("renewal_rate_limited"), std::string::npos);
  EXPECT_GT(std::atoi(soon.Header("retry-after").c_str()), 3500);
  clock_->Advance(seconds(3601));
  auto other_key = renew(MakeKeyAndCsr().csr_pem);
  EXPECT_EQ(other_key.status, 403) << other_key.body;
  EXPECT_NE(other_key.body.find("renewal_key_mismatch"), std::string::npos);
  auto renewed = renew(CsrFor(kc.key_pem));
  EXPECT_EQ(renewed.status, 200) << renewed.body;
}

}  // namespace
}  // namespace edgeprune::fleet_test
