// The agent API spoken by hand on the suite's real server: a device enrolls with a CSR, then over
// mutual TLS with the certificate it got reports a profile, heartbeats, telemetry and a variant
// event, asks for a variant it is not offered and renews; without a certificate it is refused.
// The real agents of the other cases use these routes from their own process, where the harness
// sees no answer; here every answer passes through CaptureResponse, so the contract check
// (tools/openapi/check_openapi.py) validates the agent routes' responses too.
#include "full_loop_fixture.hpp"
#include "server/support/fleet_test_csr.hpp"

namespace edgeprune::e2e {
namespace {

// One request over `client`, captured like the harness's operator calls.
ApiResult Send(http::HttpsClient& client, const std::string& method, const std::string& target,
               const std::string& body = "") {
  http::ClientRequest req;
  req.method = method;
  req.target = target;
  if (!body.empty()) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body;
  }
  auto resp = client.Send(req);
  ApiResult r;
  if (!resp.ok()) {
    client.Close();
    r.raw = resp.error().ToString();
    return r;
  }
  r.status = resp->status;
  r.raw = resp->body;
  CaptureResponse(method, target, r.status, resp->Header("content-type"), r.raw);
  boost::system::error_code ec;
  if (resp->Header("content-type").find("json") != std::string::npos) r.body = bj::parse(r.raw, ec);
  return r;
}

std::unique_ptr<http::HttpsClient> ClientWith(const std::string& cert, const std::string& key) {
  auto ctx = tls::MakeClientContext({suite->pki.ca_cert(), cert, key});
  EXPECT_TRUE(ctx.ok()) << ctx.error().ToString();
  http::ClientOptions o;
  o.host = "127.0.0.1";
  o.port = suite->port;
  o.tls = *ctx;
  o.timeout = seconds(30);
  return std::make_unique<http::HttpsClient>(o);
}

TEST_F(FullLoopTest, ContractTourOfTheAgentApi) {
  auto& s = *suite;
  auto anonymous = ClientWith("", "");
  const auto identity = fleet_test::MakeKeyAndCsr();

  // Enrollment is public: a wrong token is refused, a real one gets a certificate.
  auto refused = Send(*anonymous, "POST", "/agent/v1/enroll",
                      bj::serialize(bj::object{{"token", "epe_wrong"}, {"csr_pem", identity.csr_pem},
                                               {"hostname", "contract-tour"}}));
  EXPECT_EQ(refused.status, 401) << refused.raw;
  auto grant = Send(*anonymous, "POST", "/agent/v1/enroll",
                    bj::serialize(bj::object{{"token", s.NewEnrollmentToken()},
                                             {"csr_pem", identity.csr_pem},
                                             {"hostname", "contract-tour"}}));
  ASSERT_EQ(grant.status, 201) << grant.raw;
  const std::string device = Str(grant.body, "device_id");
  const std::string cert = s.dir.WriteFile("tour-device.crt", Str(grant.body, "certificate_pem"));
  const std::string key = s.dir.WriteFile("tour-device.key", identity.key_pem);
  std::filesystem::permissions(key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // Device routes refuse a client without a certificate.
  EXPECT_EQ(Send(*anonymous, "POST", "/agent/v1/heartbeat", "{}").status, 401);

  auto mtls = ClientWith(cert, key);
  auto profile = Send(*mtls, "PUT", "/agent/v1/profile", R"({
      "arch": "x86_64", "cpu_model": "tour", "cores": 2, "simd_flags": ["avx2"],
      "ram_total_bytes": 2147483648, "ram_available_bytes": 1073741824,
      "disk_free_bytes": 8589934592, "os": "Debian 12", "torch_version": "1.13.0",
      "agent_version": "0.1.0", "measured_at": 1764900000,
      "microbench": {"matmul_gflops": 10.0, "conv_gmacs_per_s": 5.0, "conv_overhead_ms": 0.1,
                     "mem_bandwidth_gbps": 8.0, "threads": 2}})");
  EXPECT_EQ(profile.status, 200) << profile.raw;
  EXPECT_EQ(Str(profile.body, "device_id"), device);
  EXPECT_EQ(Send(*mtls, "PUT", "/agent/v1/profile", R"({"arch": 7})").status, 400);

  auto beat = Send(*mtls, "POST", "/agent/v1/heartbeat",
                   R"({"agent_state": "serving", "installed_variant_id": null, "uptime_s": 5, "rss_bytes": 1048576})");
  EXPECT_EQ(beat.status, 200) << beat.raw;
  EXPECT_EQ(Send(*mtls, "POST", "/agent/v1/heartbeat", "{").status, 400);

  auto ack = Send(*mtls, "POST", "/agent/v1/telemetry", R"({"reports": [
      {"seq": 1, "timestamp_ms": 1764900000000, "variant_id": "var-none", "feedback_count": 0,
       "inference_count": 3, "probe_accuracy": 0.9,
       "probe_latency": {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "count": 50}}]})");
  EXPECT_EQ(ack.status, 200) << ack.raw;
  EXPECT_EQ(Int(ack.body, "acked_seq"), 1);
  EXPECT_EQ(Send(*mtls, "POST", "/agent/v1/telemetry", R"({"reports": []})").status, 400);

  auto event = Send(*mtls, "POST", "/agent/v1/variants/var-none/events",
                    R"({"event": "refused", "reason": "contract tour"})");
  EXPECT_EQ(event.status, 200) << event.raw;
  EXPECT_EQ(Send(*mtls, "POST", "/agent/v1/variants/var-none/events", R"({"event": "exploded"})").status,
            400);

  // Nothing is assigned to this device: no manifest or payload for it.
  EXPECT_EQ(Send(*mtls, "GET", "/agent/v1/variants/var-none/manifest").status, 404);
  EXPECT_EQ(Send(*mtls, "GET", "/agent/v1/variants/var-none/payload").status, 404);
  EXPECT_EQ(Send(*mtls, "GET", "/agent/v1/variants/var-none/probe").status, 404);

  // Renewal over the same key: granted, or refused until fleet.renew_min_interval_s has passed.
  auto renewed = Send(*mtls, "POST", "/agent/v1/renew",
                      bj::serialize(bj::object{{"csr_pem", fleet_test::CsrFor(identity.key_pem)}}));
  EXPECT_TRUE(renewed.status == 200 || renewed.status == 429) << renewed.raw;

  // A revoked device is refused at the door.
  EXPECT_EQ(s.Call("POST", "/api/v1/devices/" + device + "/revoke").status, 200);
  mtls->Close();
  EXPECT_EQ(Send(*mtls, "POST", "/agent/v1/heartbeat",
                 R"({"agent_state": "serving", "uptime_s": 6, "rss_bytes": 1048576})").status,
            403);
}

}  // namespace
}  // namespace edgeprune::e2e
