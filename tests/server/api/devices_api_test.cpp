// The fleet's HTTP API over real TLS: operator roles and audit, token failures, mTLS identity
// (wrong CA, unknown, revoked), profile validation, heartbeats and offline detection.
#include <gtest/gtest.h>

#include "edgeprune/common/wire/profile.hpp"
#include "server/support/enroll_fixture.hpp"
#include "server/support/fleet_test_csr.hpp"

namespace edgeprune::fleet_test {
namespace {

using std::chrono::seconds;

std::string GoodProfileBody() {
  wire::DeviceProfile p;
  p.arch = "aarch64";
  p.cpu_model = "Cortex-A72";
  p.cores = 4;
  p.simd_flags = {"asimd"};
  p.ram_total_bytes = 4LL << 30;
  p.ram_available_bytes = 3LL << 30;
  p.disk_free_bytes = 20LL << 30;
  p.os = "Linux 6.1";
  p.torch_version = "1.13.1";
  p.agent_version = "0.1.0";
  p.bench = {8.0, 3.0, 0.2, 4.0, 4};
  p.measured_at = 1800000000;
  return boost::json::serialize(wire::ToJson(p));
}

std::string Heartbeat() { return R"({"agent_state":"poll","uptime_s":3,"rss_bytes":1000})"; }

class DevicesApiTest : public EnrollFixture {};

TEST_F(DevicesApiTest, EnrollmentTokenFailuresAnswer401Or403AndCreateNothing) {
  auto kc = MakeKeyAndCsr();
  auto enroll = [&](const std::string& token) {
    auto c = Client();
    return Call(*c, "POST", "/agent/v1/enroll",
                boost::json::serialize(boost::json::object{{"token", token}, {"csr_pem", kc.csr_pem}}));
  };
  auto unknown = enroll("epe_unknown");
  EXPECT_EQ(unknown.status, 401) << unknown.raw;
  EXPECT_EQ(unknown.body["error"].as_object()["code"].as_string(), "invalid_enrollment_token");

  const std::string once = NewEnrollmentToken(1);
  EXPECT_EQ(enroll(once).status, 201);
  auto used = enroll(once);
  EXPECT_EQ(used.status, 403) << used.raw;
  EXPECT_EQ(used.body["error"].as_object()["code"].as_string(), "enrollment_token_used_up");

  const std::string short_lived = NewEnrollmentToken(10, 60);
  clock_->Advance(seconds(61));
  auto expired = enroll(short_lived);
  EXPECT_EQ(expired.status, 403) << expired.raw;
  EXPECT_EQ(expired.body["error"].as_object()["code"].as_string(), "enrollment_token_expired");

  auto no_csr = enroll("");
  EXPECT_EQ(no_csr.status, 400);
  EXPECT_EQ(DeviceCount(), 1);
}

TEST_F(DevicesApiTest, OnlyEnrollIsReachableWithoutAClientCertificate) {
  auto anonymous = Client();
  auto r = Call(*anonymous, "POST", "/agent/v1/heartbeat", Heartbeat());
  EXPECT_EQ(r.status, 401) << r.raw;
  EXPECT_EQ(Call(*anonymous, "PUT", "/agent/v1/profile", GoodProfileBody()).status, 401);
}

TEST_F(DevicesApiTest, CertificatesFromAnotherCaUnknownOrRevokedDevicesAreRefused) {
  // Another CA: the handshake itself fails.
  auto rogue = Client(pki_.wrong_client.cert, pki_.wrong_client.key);
  auto resp = rogue->Post("/agent/v1/heartbeat", Heartbeat());
  EXPECT_FALSE(resp.ok() && resp->status == 200);

  // Signed by the device CA but never enrolled here: refused by the registry.
  auto stranger = Client(pki_.client.cert, pki_.client.key);
  auto r = Call(*stranger, "POST", "/agent/v1/heartbeat", Heartbeat());
  EXPECT_EQ(r.status, 401) << r.raw;
  EXPECT_EQ(r.body["error"].as_object()["code"].as_string(), "unknown_device");

  auto device = EnrollDirect(NewEnrollmentToken());
  auto client = Client(device.cert, device.key);
  auto ok = Call(*client, "POST", "/agent/v1/heartbeat", Heartbeat());
  ASSERT_EQ(ok.status, 200) << ok.raw;
  EXPECT_TRUE(ok.body["desired_state"].as_object()["variant_id"].is_null());
  EXPECT_EQ(ok.body["heartbeat_interval_s"].as_int64(), 10);

  auto revoke = Operator("POST", "/api/v1/devices/" + device.device_id + "/revoke");
  ASSERT_EQ(revoke.status, 200) << revoke.raw;
  // The same keep-alive connection, next call: refused.
  auto after = Call(*client, "POST", "/agent/v1/heartbeat", Heartbeat());
  EXPECT_EQ(after.status, 403) << after.raw;
  EXPECT_EQ(after.body["error"].as_object()["code"].as_string(), "device_revoked");
  auto fresh = Client(device.cert, device.key);
  EXPECT_EQ(Call(*fresh, "PUT", "/agent/v1/profile", GoodProfileBody()).status, 403);
  EXPECT_EQ(Operator("GET", "/api/v1/devices/" + device.device_id).body["liveness"].as_string(),
            "revoked");
}

TEST_F(DevicesApiTest, ViewerTokenIsRefusedOnStateChangingRoutesAndChangesAreAudited) {
  auto created = Operator("POST", "/api/v1/tokens", R"({"name":"dash","role":"viewer"})");
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string viewer(created.body["token"].as_string());
  auto device = EnrollDirect(NewEnrollmentToken());

  EXPECT_EQ(Operator("GET", "/api/v1/devices", "", viewer).status, 200);
  EXPECT_EQ(Operator("GET", "/api/v1/devices/" + device.device_id, "", viewer).status, 200);
  EXPECT_EQ(Operator("POST", "/api/v1/enrollment-tokens", "{}", viewer).status, 403);
  EXPECT_EQ(Operator("PATCH", "/api/v1/devices/" + device.device_id, R"({"tags":["x"]})", viewer).status, 403);
  EXPECT_EQ(Operator("POST", "/api/v1/devices/" + device.device_id + "/revoke", "", viewer).status, 403);
  EXPECT_EQ(Operator("POST", "/api/v1/tokens", R"({"name":"evil","role":"admin"})", viewer).status, 403);
  EXPECT_EQ(Operator("GET", "/api/v1/audit", "", viewer).status, 403);
  EXPECT_EQ(Operator("GET", "/api/v1/devices", "", "ept_wrong").status, 401);
  EXPECT_EQ(Operator("GET", "/api/v1/devices/" + device.device_id, "", viewer).body["status"].as_string(),
            "active");

  auto patched = Operator("PATCH", "/api/v1/devices/" + device.device_id,
                          R"({"tags":["line:1"],"caps":{"latency_slo_ms":5}})");
  ASSERT_EQ(patched.status, 200) << patched.raw;
  auto bad_patch = Operator("PATCH", "/api/v1/devices/" + device.device_id, R"({"caps":{"slo":5}})");
  EXPECT_EQ(bad_patch.status, 400);

  auto audit = Operator("GET", "/api/v1/audit?limit=50");
  ASSERT_EQ(audit.status, 200) << audit.raw;
  std::map<std::string, std::string> seen;  // action → outcome (newest first, keep first seen)
  for (const auto& e : audit.body["items"].as_array()) {
    const auto& o = e.as_object();
    seen.emplace(std::string(o.at("action").as_string()) + "/" + std::string(o.at("outcome").as_string()),
                 std::string(o.at("actor").as_string()));
  }
  EXPECT_EQ(seen["token.create/ok"], "token:bootstrap-admin");
  EXPECT_EQ(seen["enrollment_token.create/ok"], "token:bootstrap-admin");
  EXPECT_EQ(seen["device.enroll/ok"].rfind("device:dev-", 0), 0u);
  EXPECT_EQ(seen["device.patch/ok"], "token:bootstrap-admin");
  EXPECT_EQ(seen["device.patch/failed"], "token:bootstrap-admin");
  // The viewer's refused state-changing calls are audited too (its GETs are not).
  EXPECT_EQ(seen["request.denied/denied"], "token:dash");
  int denied = 0;
  for (const auto& e : audit.body["items"].as_array()) {
    const auto& o = e.as_object();
    if (o.at("action").as_string() != "request.denied") continue;
    ++denied;
    EXPECT_EQ(o.at("actor").as_string(), "token:dash");
    EXPECT_NE(std::string(o.at("detail").as_string()).find("insufficient_role"), std::string::npos);
  }
  EXPECT_EQ(denied, 4) << "POST enrollment-tokens, PATCH device, POST revoke, POST tokens";
}

TEST_F(DevicesApiTest, AbsurdProfilesAreRefusedNamingTheFieldAndNothingIsStored) {
  auto device = EnrollDirect(NewEnrollmentToken());
  auto client = Client(device.cert, device.key);
  auto with = [&](const char* field, boost::json::value v) {
    auto o = json::ParseObject(GoodProfileBody()).value();
    if (v.is_null()) o.erase(field);
    else o[field] = v;
    return Call(*client, "PUT", "/agent/v1/profile", boost::json::serialize(o));
  };
  struct Case { const char* field; boost::json::value value; };
  const Case cases[] = {{"ram_total_bytes", -1}, {"cores", 1e30}, {"cores", nullptr},
                        {"ram_available_bytes", "lots"}, {"disk_free_bytes", "12"}};
  for (const auto& c : cases) {
    auto r = with(c.field, c.value);
    EXPECT_EQ(r.status, 400) << c.field << ": " << r.raw;
    EXPECT_NE(r.raw.find(c.field), std::string::npos) << r.raw;
  }
  auto huge = Call(*client, "PUT", "/agent/v1/profile", std::string(10 * 1024 * 1024, ' '));
  EXPECT_EQ(huge.status, 413) << huge.raw.substr(0, 200);
  auto fresh = Client(device.cert, device.key);
  EXPECT_EQ(Call(*fresh, "PUT", "/agent/v1/profile", "{not json").status, 400);
  EXPECT_TRUE(fleet_->registry->ProfileHistory(device.device_id, 10)->empty());

  auto good = Call(*fresh, "PUT", "/agent/v1/profile", GoodProfileBody());
  ASSERT_EQ(good.status, 200) << good.raw;
  EXPECT_TRUE(good.body["budget"].as_object().contains("max_macs"));
  EXPECT_EQ(fleet_->registry->ProfileHistory(device.device_id, 10)->size(), 1u);
}

TEST_F(DevicesApiTest, ADeviceThatStopsHeartbeatingGoesOfflineInApiAndMetrics) {
  auto a = EnrollDirect(NewEnrollmentToken());
  auto b = EnrollDirect(NewEnrollmentToken());
  ASSERT_TRUE(Operator("PATCH", "/api/v1/devices/" + b.device_id, R"({"tags":["lab"]})").status == 200);
  auto ca = Client(a.cert, a.key);
  auto cb = Client(b.cert, b.key);
  ASSERT_EQ(Call(*ca, "POST", "/agent/v1/heartbeat", Heartbeat()).status, 200);
  ASSERT_EQ(Call(*cb, "POST", "/agent/v1/heartbeat", Heartbeat()).status, 200);
  clock_->Advance(seconds(25));
  ASSERT_EQ(Call(*cb, "POST", "/agent/v1/heartbeat", Heartbeat()).status, 200);  // b keeps going
  clock_->Advance(seconds(10));  // a: 35 s since its last heartbeat > 3 × 10 s

  auto online = Operator("GET", "/api/v1/devices?status=online");
  ASSERT_EQ(online.status, 200) << online.raw;
  ASSERT_EQ(online.body["items"].as_array().size(), 1u) << online.raw;
  EXPECT_EQ(online.body["items"].as_array()[0].as_object().at("id").as_string(), b.device_id);
  auto offline = Operator("GET", "/api/v1/devices?status=offline");
  ASSERT_EQ(offline.body["items"].as_array().size(), 1u);
  EXPECT_EQ(offline.body["items"].as_array()[0].as_object().at("id").as_string(), a.device_id);
  EXPECT_EQ(Operator("GET", "/api/v1/devices?tag=lab").body["items"].as_array().size(), 1u);
  EXPECT_EQ(Operator("GET", "/api/v1/devices?status=bogus").status, 400);

  // Pagination: one per page, the cursor walks both.
  auto page1 = Operator("GET", "/api/v1/devices?limit=1");
  ASSERT_EQ(page1.body["items"].as_array().size(), 1u);
  const std::string cursor(page1.body["next_cursor"].as_string());
  auto page2 = Operator("GET", "/api/v1/devices?limit=1&cursor=" + cursor);
  ASSERT_EQ(page2.body["items"].as_array().size(), 1u);
  EXPECT_NE(page2.body["items"].as_array()[0].as_object().at("id"),
            page1.body["items"].as_array()[0].as_object().at("id"));

  ASSERT_TRUE(fleet_->Tick().ok());
  auto metrics = Operator("GET", "/metrics");
  EXPECT_NE(metrics.raw.find("edgeprune_devices{status=\"offline\"} 1"), std::string::npos) << metrics.raw;
  EXPECT_NE(metrics.raw.find("edgeprune_devices{status=\"online\"} 1"), std::string::npos);
  EXPECT_NE(metrics.raw.find("edgeprune_heartbeats_total 3"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::fleet_test
