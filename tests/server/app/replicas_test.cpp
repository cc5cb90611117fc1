// Two real `serve` processes ("replicas") on one PostgreSQL database: a device enrolled through
// replica A works through replica B, and once it is revoked through A, B refuses it within its
// certificate cache's lifetime (fleet.auth_cache_ms, 500 ms). The delay is measured and printed;
// it is not asserted against a wall-clock bound (the bound is tested with a manual clock in
// tests/server/fleet/registry_test.cpp), only that B refuses it. And both replicas report the
// same liveness for a device heartbeating through only one of them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "server/support/fleet_test_csr.hpp"
#include "server/support/serve_fixture.hpp"
#include "support/build_paths.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::server {
namespace {

namespace bj = boost::json;
using Clock = std::chrono::steady_clock;

struct Replica {
  std::unique_ptr<edgeprune::testing::Process> process;
  std::uint16_t port = 0;
};

class ReplicasTest : public testing::ServeFixture {
 protected:
  Replica Start(const std::string& name, std::vector<std::string> extra = {}) {
    Replica r;
    std::vector<std::string> args = {"--set", "store.url=" + pg_.url(),
                                     "--set", "fleet.device_ca_cert=" + pki_.client_ca.cert,
                                     "--set", "fleet.device_ca_key=" + pki_.client_ca.key};
    args.insert(args.end(), extra.begin(), extra.end());
    r.process = std::make_unique<edgeprune::testing::Process>(edgeprune::testing::ProcessOptions{
        .program = edgeprune::testing::ServerBin(),
        .args = ServeArgs(args),
        .env = {},
        .working_dir = dir_.path(),
        .output_dir = dir_.Subdir(name + "-logs")});
    auto port = r.process->WaitForListening(std::chrono::seconds(60));
    EXPECT_TRUE(port.has_value()) << r.process->Stdout() << r.process->Stderr();
    r.port = port.value_or(0);
    return r;
  }

  std::unique_ptr<http::HttpsClient> ClientOf(const Replica& r, const std::string& cert = "",
                                              const std::string& key = "") const {
    auto ctx = tls::MakeClientContext({pki_.ca_cert(), cert, key});
    EXPECT_TRUE(ctx.ok()) << ctx.error().ToString();
    http::ClientOptions o;
    o.host = "127.0.0.1";
    o.port = r.port;
    o.tls = *ctx;
    o.timeout = std::chrono::seconds(20);
    return std::make_unique<http::HttpsClient>(o);
  }

  // The status of one call; 0 when the call itself failed.
  static int Post(http::HttpsClient& c, const std::string& target, const std::string& body,
                  const std::string& bearer, std::string* answer = nullptr) {
    http::HeaderList headers;
    if (!bearer.empty()) headers.push_back({"Authorization", "Bearer " + bearer});
    auto r = c.Post(target, body, "application/json", headers);
    if (!r.ok()) return 0;
    if (answer) *answer = r->body;
    return r->status;
  }

  // The admin token the first replica on the empty database printed.
  static std::string AdminTokenOf(const Replica& r) {
    const std::string out = r.process->Stdout();
    const auto at = out.find("ept_", out.find("admin token (shown once): "));
    if (at == std::string::npos) return "";
    return out.substr(at, out.find('\n', at) - at);
  }

  struct Enrolled {
    std::string device, cert, key;
  };
  // A device enrolled through `r` with a fresh enrollment token; its key and certificate files.
  Enrolled Enroll(const Replica& r, const std::string& admin) {
    Enrolled e;
    auto op = ClientOf(r);
    std::string answer;
    EXPECT_EQ(Post(*op, "/api/v1/enrollment-tokens", "{}", admin, &answer), 201) << answer;
    auto token_body = json::ParseObject(answer);
    if (!token_body.ok()) return e;
    const std::string token(token_body->at("token").as_string());
    const auto kc = fleet_test::MakeKeyAndCsr();
    auto anonymous = ClientOf(r);
    EXPECT_EQ(Post(*anonymous, "/agent/v1/enroll",
                   bj::serialize(bj::object{{"token", token}, {"csr_pem", kc.csr_pem},
                                            {"hostname", "gw"}}),
                   "", &answer),
              201)
        << answer;
    auto grant = json::ParseObject(answer);
    if (!grant.ok()) return e;
    e.device = std::string(grant->at("device_id").as_string());
    e.cert =
        dir_.WriteFile(e.device + ".crt", std::string(grant->at("certificate_pem").as_string()));
    e.key = dir_.File(e.device + ".key");
    EXPECT_TRUE(fs::WriteFileAtomic(e.key, kc.key_pem, 0600).ok());
    return e;
  }

  // GET through `r` with the admin token: the status and the body.
  std::pair<int, std::string> Get(const Replica& r, const std::string& target,
                                  const std::string& admin) const {
    auto c = ClientOf(r);
    auto got = c->Get(target, {{"Authorization", "Bearer " + admin}});
    if (!got.ok()) return {0, got.error().ToString()};
    return {got->status, got->body};
  }

  edgeprune::testing::TestDatabase pg_{store::Dialect::kPostgres};
};

constexpr const char* kHeartbeat = R"({"agent_state":"poll","uptime_s":3,"rss_bytes":1000})";

TEST_F(ReplicasTest, ADeviceRevokedThroughReplicaAIsRefusedByReplicaB) {
  ASSERT_TRUE(pg_.error().empty()) << pg_.error();
  Replica a = Start("a");
  const std::string admin = AdminTokenOf(a);
  ASSERT_FALSE(admin.empty()) << a.process->Stdout();
  Replica b = Start("b");
  auto operator_a = ClientOf(a);

  constexpr int kDevices = 3;
  for (int i = 0; i < kDevices; ++i) {
    // Enrolled through A.
    const Enrolled enrolled = Enroll(a, admin);
    ASSERT_FALSE(enrolled.device.empty());
    const std::string& device = enrolled.device;
    const std::string& cert = enrolled.cert;
    const std::string& key = enrolled.key;
    std::string answer;

    // Heartbeats through B are accepted (and B now holds the certificate in its cache).
    auto device_b = ClientOf(b, cert, key);
    ASSERT_EQ(Post(*device_b, "/agent/v1/heartbeat", kHeartbeat, "", &answer), 200) << answer;
    ASSERT_EQ(Post(*device_b, "/agent/v1/heartbeat", kHeartbeat, "", &answer), 200) << answer;

    // Revoked through A: B refuses the device's next calls.
    ASSERT_EQ(Post(*operator_a, "/api/v1/devices/" + device + "/revoke", "{}", admin, &answer),
              200)
        << answer;
    const auto revoked = Clock::now();
    int status = 200, calls = 0;
    while (status == 200 && Clock::now() - revoked < std::chrono::seconds(20)) {
      status = Post(*device_b, "/agent/v1/heartbeat", kHeartbeat, "", &answer);
      ++calls;
      if (status == 200) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - revoked).count();
    EXPECT_EQ(status, 403) << answer;
    EXPECT_NE(answer.find("device_revoked"), std::string::npos) << answer;
    std::printf("device %d: revoked through replica A, refused by replica B after %.0f ms "
                "(%d heartbeat(s) through B; fleet.auth_cache_ms = 500)\n",
                i + 1, ms, calls);
    std::fflush(stdout);
  }
}

// Liveness is read from the shared table: a device that heartbeated through A once and then only
// through B (its connection moved) is online for both, in the device view and the gauges, after
// A's own record of it has aged past the offline limit (2 s here).
TEST_F(ReplicasTest, BothReplicasReportTheLivenessOfADeviceHeartbeatingThroughOne) {
  ASSERT_TRUE(pg_.error().empty()) << pg_.error();
  const std::vector<std::string> fast = {"--set", "fleet.heartbeat_interval_s=1",
                                         "--set", "fleet.offline_after_missed=2",
                                         "--set", "fleet.flush_interval_ms=100"};
  Replica a = Start("a", fast);
  const std::string admin = AdminTokenOf(a);
  ASSERT_FALSE(admin.empty()) << a.process->Stdout();
  Replica b = Start("b", fast);
  const Enrolled d = Enroll(a, admin);
  ASSERT_FALSE(d.device.empty());
  std::string answer;
  ASSERT_EQ(Post(*ClientOf(a, d.cert, d.key), "/agent/v1/heartbeat", kHeartbeat, "", &answer), 200)
      << answer;

  // Through B only, every 200 ms for 3 s: A's own last heartbeat is then 3 s old.
  auto device_b = ClientOf(b, d.cert, d.key);
  const auto until = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < until) {
    ASSERT_EQ(Post(*device_b, "/agent/v1/heartbeat", kHeartbeat, "", &answer), 200) << answer;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(Post(*device_b, "/agent/v1/heartbeat", kHeartbeat, "", &answer), 200) << answer;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // B flushed; A recounted

  for (const Replica* r : {&a, &b}) {
    const char* name = r == &a ? "A" : "B";
    auto [status, body] = Get(*r, "/api/v1/devices/" + d.device, admin);
    ASSERT_EQ(status, 200) << name << ": " << body;
    auto view = json::ParseObject(body);
    ASSERT_TRUE(view.ok()) << body;
    EXPECT_EQ(view->at("liveness").as_string(), "online") << name << ": " << body;
    auto [metrics_status, metrics] = Get(*r, "/metrics", admin);
    ASSERT_EQ(metrics_status, 200) << name;
    EXPECT_NE(metrics.find("edgeprune_devices{status=\"online\"} 1"), std::string::npos)
        << name << ":\n" << metrics;
    EXPECT_NE(metrics.find("edgeprune_devices{status=\"offline\"} 0"), std::string::npos)
        << name << ":\n" << metrics;
  }
}

}  // namespace
}  // namespace edgeprune::server
