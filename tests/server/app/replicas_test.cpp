// Two real `serve` processes ("replicas") on one PostgreSQL database: a device enrolled through
// replica A works through replica B, and once it is revoked through A, B refuses it within its
// certificate cache's lifetime (fleet.auth_cache_ms, 500 ms). The delay is measured and printed;
// it is not asserted against a wall-clock bound (the bound is tested with a manual clock in
// tests/server/fleet/registry_test.cpp), only that B refuses it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

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
  Replica Start(const std::string& name) {
    Replica r;
    r.process = std::make_unique<edgeprune::testing::Process>(edgeprune::testing::ProcessOptions{
        .program = edgeprune::testing::ServerBin(),
        .args = ServeArgs({"--set", "store.url=" + pg_.url(),
                           "--set", "fleet.device_ca_cert=" + pki_.client_ca.cert,
                           "--set", "fleet.device_ca_key=" + pki_.client_ca.key}),
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

  edgeprune::testing::TestDatabase pg_{store::Dialect::kPostgres};
};

constexpr const char* kHeartbeat = R"({"agent_state":"poll","uptime_s":3,"rss_bytes":1000})";

TEST_F(ReplicasTest, ADeviceRevokedThroughReplicaAIsRefusedByReplicaB) {
  ASSERT_TRUE(pg_.error().empty()) << pg_.error();
  Replica a = Start("a");
  const std::string out = a.process->Stdout();
  const auto at = out.find("ept_", out.find("admin token (shown once): "));
  ASSERT_NE(at, std::string::npos) << out;
  const std::string admin = out.substr(at, out.find('\n', at) - at);
  Replica b = Start("b");
  auto operator_a = ClientOf(a);

  constexpr int kDevices = 3;
  for (int i = 0; i < kDevices; ++i) {
    // Enrolled through A.
    std::string answer;
    ASSERT_EQ(Post(*operator_a, "/api/v1/enrollment-tokens", "{}", admin, &answer), 201) << answer;
    const std::string token(json::ParseObject(answer)->at("token").as_string());
    const auto kc = fleet_test::MakeKeyAndCsr();
    auto anonymous = ClientOf(a);
    ASSERT_EQ(Post(*anonymous, "/agent/v1/enroll",
                   bj::serialize(bj::object{{"token", token}, {"csr_pem", kc.csr_pem},
                                            {"hostname", "gw"}}),
                   "", &answer),
              201)
        << answer;
    const auto grant = *json::ParseObject(answer);
    const std::string device(grant.at("device_id").as_string());
    const std::string cert = dir_.WriteFile(device + ".crt",
                                            std::string(grant.at("certificate_pem").as_string()));
    const std::string key = dir_.File(device + ".key");
    ASSERT_TRUE(fs::WriteFileAtomic(key, kc.key_pem, 0600).ok());

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

}  // namespace
}  // namespace edgeprune::server
