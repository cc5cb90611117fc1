// A tour of the operator API on the suite's real server: every list and read, the token and
// device life cycles, and the errors an operator meets (unknown ids, bad input, a too small
// role, a bad token). It asserts what each answer must be; run with EDGEPRUNE_API_CAPTURE (the
// e2e CTest) its answers are also what tools/openapi/check_openapi.py validates the contract
// against, so the routes the full loop does not call are checked too.
#include "support/build_paths.hpp"
#include "full_loop_fixture.hpp"

namespace edgeprune::e2e {
namespace {

TEST_F(FullLoopTest, ContractTourOfTheOperatorApi) {
  auto& s = *suite;
  const std::string& model = s.model_a;
  // Probes, metrics and the contract itself.
  EXPECT_EQ(s.Call("GET", "/healthz").status, 200);
  EXPECT_EQ(s.Call("GET", "/readyz").status, 200);
  auto contract = s.Call("GET", "/api/v1/openapi.json");
  ASSERT_EQ(contract.status, 200);
  EXPECT_TRUE(contract.body.as_object().contains("paths"));

  // Every list and read.
  for (const std::string& target :
       {std::string("/api/v1/models"), "/api/v1/models/" + model, "/api/v1/models/" + model + "/variants",
        std::string("/api/v1/datasets"), std::string("/api/v1/deployments"), std::string("/api/v1/jobs"),
        std::string("/api/v1/jobs?state=succeeded"), std::string("/api/v1/rollouts?limit=2"),
        std::string("/api/v1/devices?limit=2"), std::string("/api/v1/devices?status=online"),
        std::string("/api/v1/audit?limit=3"), std::string("/api/v1/tokens"),
        std::string("/api/v1/enrollment-tokens")}) {
    auto r = s.Call("GET", target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.raw;
  }

  // Unknown ids and bad input: the documented codes, nothing changed.
  for (const auto& [target, code] : std::vector<std::pair<std::string, std::string>>{
           {"/api/v1/models/mdl-none", "model_not_found"},
           {"/api/v1/models/mdl-none/variants", "model_not_found"},
           {"/api/v1/devices/dev-none", "device_not_found"},
           {"/api/v1/devices/dev-none/profiles", "device_not_found"},
           {"/api/v1/jobs/job-none", "job_not_found"},
           {"/api/v1/deployments/dep-none", "deployment_not_found"},
           {"/api/v1/rollouts/ro-none", "rollout_not_found"},
           {"/api/v1/datasets/ds-0000000000000000", "dataset_not_found"},
           {"/api/v1/devices?limit=1e3", "invalid_parameter"},
           {"/api/v1/jobs?state=sleeping", "invalid_job_state"},
       }) {
    auto r = s.Call("GET", target);
    EXPECT_EQ(Str(r.body.is_object() ? r.body.as_object()["error"] : bj::value(), "code"), code)
        << target << ": " << r.raw;
  }
  EXPECT_EQ(s.Call("POST", "/api/v1/deployments", "{").status, 400);
  EXPECT_EQ(s.Call("POST", "/api/v1/rollouts", R"({"model": ")" + model + R"(", "phases": []})").status, 400);
  EXPECT_EQ(s.Call("POST", "/api/v1/rollouts/ro-none/pause").status, 404);
  EXPECT_EQ(s.Call("DELETE", "/api/v1/jobs/job-none").status, 404);

  EXPECT_EQ(s.Call("POST", "/api/v1/rollouts/ro-none/promote").status, 404);
  EXPECT_EQ(s.Call("POST", "/api/v1/rollouts/ro-none/approve").status, 404);

  // A data set's life: stored once (the same bytes again are the same data set), then removed.
  auto npz = fs::ReadFile(edgeprune::testing::SourceDir() +
                          "/tests/fixtures/datasets/features_savez.npz");
  ASSERT_TRUE(npz.ok()) << npz.error().ToString();
  auto stored = s.Call("POST", "/api/v1/datasets?name=tour", *npz, "application/octet-stream");
  ASSERT_EQ(stored.status, 201) << stored.raw;
  EXPECT_EQ(s.Call("POST", "/api/v1/datasets?name=tour", *npz, "application/octet-stream").status, 200);
  EXPECT_EQ(s.Call("POST", "/api/v1/datasets?name=tour", "not an archive", "application/octet-stream").status,
            400);
  EXPECT_EQ(s.Call("POST", "/api/v1/datasets", *npz, "application/octet-stream").status, 400);
  const std::string dataset = "/api/v1/datasets/" + Str(stored.body, "id");
  EXPECT_EQ(s.Call("GET", dataset).status, 200);
  EXPECT_EQ(s.Call("DELETE", dataset).status, 200);
  EXPECT_EQ(s.Call("DELETE", dataset).status, 404);

  // An API token's life: a viewer may read, not change; revoked, it is refused.
  auto made = s.Call("POST", "/api/v1/tokens", R"({"name": "tour-viewer", "role": "viewer"})");
  ASSERT_EQ(made.status, 201) << made.raw;
  const std::string admin = s.token;
  s.token = Str(made.body, "token");
  EXPECT_EQ(s.Call("GET", "/api/v1/models").status, 200);
  EXPECT_EQ(s.Call("POST", "/api/v1/enrollment-tokens", "{}").status, 403);
  s.token = "ept_not-a-token";
  EXPECT_EQ(s.Call("GET", "/api/v1/models").status, 401);
  s.token = admin;
  EXPECT_EQ(s.Call("POST", "/api/v1/tokens", R"({"name": "tour-viewer", "role": "viewer"})").status, 409);
  EXPECT_EQ(s.Call("DELETE", "/api/v1/tokens/tour-viewer").status, 200);
  EXPECT_EQ(s.Call("DELETE", "/api/v1/tokens/tour-viewer").status, 404);

  // An enrollment token's life.
  auto et = s.Call("POST", "/api/v1/enrollment-tokens",
                   R"({"ttl_s": 600, "max_uses": 2, "tags": ["tour"], "note": "contract tour"})");
  ASSERT_EQ(et.status, 201) << et.raw;
  const std::string et_path = "/api/v1/enrollment-tokens/" + std::to_string(Int(et.body, "id"));
  EXPECT_EQ(s.Call("DELETE", et_path).status, 200);
  EXPECT_EQ(s.Call("DELETE", et_path).status, 409);
  EXPECT_EQ(s.Call("DELETE", "/api/v1/enrollment-tokens/x").status, 400);

  // A device's life: read, tag, telemetry, revoke.
  Agent agent;
  agent.Start();
  const std::string dev = "/api/v1/devices/" + agent.device_id();
  EXPECT_EQ(s.Call("GET", dev).status, 200);
  EXPECT_EQ(s.Call("GET", dev + "/profiles?limit=2").status, 200);
  auto patched = s.Call("PATCH", dev, R"({"tags": ["tour"], "caps": {"latency_slo_ms": 50}})");
  EXPECT_EQ(patched.status, 200) << patched.raw;
  EXPECT_EQ(s.Call("PATCH", dev, "{}").status, 400);
  EXPECT_EQ(s.Call("GET", dev + "/telemetry?limit=5").status, 200);
  agent.Stop();
  EXPECT_EQ(s.Call("POST", dev + "/revoke").status, 200);
  EXPECT_EQ(s.Call("POST", dev + "/revoke").status, 409);
}

}  // namespace
}  // namespace edgeprune::e2e
