// The product's main loop end to end: the real `edgeprune-server serve` and real
// `edgeprune-agent run` processes over loopback (real mTLS, real SQLite files, real LibTorch
// builds of a small committed master, Fashion-MNIST from the system's dataset package), and the
// failures the loop must survive: a damaged payload, an unknown signing key, a downgrade, a cut
// download, the server and an agent killed with SIGKILL.
//
// One server serves the whole suite (started on port 0 by SetUpTestSuite, restarted on the same
// port by the kill cases); every case enrolls its own agents, so the cases stay independent. The
// first ready variant of the master is built lazily by whichever case needs it first.
// EDGEPRUNE_E2E_KEEP=<dir> copies the run's server and agent logs there at the end.

#include "full_loop_fixture.hpp"

namespace edgeprune::e2e {
namespace {

// 1. enroll → profile → deploy → build → sign → download → verify → install → infer → telemetry.
TEST_F(FullLoopTest, HappyPathFromEnrollmentToTelemetry) {
  Agent agent;
  agent.Start();
  const std::string dev = agent.device_id();
  // Enrolled and profiled: the server knows the device and computed its budget.
  auto device = suite->Call("GET", "/api/v1/devices/" + dev);
  ASSERT_EQ(device.status, 200) << device.raw;
  EXPECT_EQ(Str(device.body, "status"), "active");
  EXPECT_TRUE(device.body.as_object()["budget"].is_object()) << device.raw;
  // Profiled (LibTorch microbenchmarks included) without the daemon ever mapping LibTorch.
  EXPECT_FALSE(agent.MapsLibTorch());

  std::string variant;
  DeployAndInstall(agent, &variant);
  EXPECT_TRUE(agent.MapsLibTorch()) << "the runtime module is opened to load the variant";
  // Built, signed, ready in the ladder.
  auto v = suite->Variant(suite->model_a, variant);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(Str(v, "status"), "ready");
  EXPECT_FALSE(Str(v, "key_id").empty());
  EXPECT_GT(Int(v, "size_bytes"), 0);
  // The agent reported the install; the heartbeat carries it.
  EXPECT_TRUE(WaitUntil([&] { return !suite->Audit("variant.installed", variant, dev).empty(); },
                        seconds(20)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto d = suite->Call("GET", "/api/v1/devices/" + dev);
        return Str(d.body, "installed_variant") == variant;
      },
      seconds(20)));

  // Local inference answers with a class and the variant that computed it.
  for (int i = 0; i < 5; ++i) {
    auto answer = agent.Infer();
    ASSERT_TRUE(answer.is_object()) << agent.Log();
    EXPECT_EQ(Str(answer, "variant_id"), variant);
    const auto cls = Int(answer, "class");
    EXPECT_GE(cls, 0);
    EXPECT_LT(cls, 10);
  }

  // Telemetry: reports of this variant reach the server, with probe metrics and the live
  // inferences; /metrics shows the device's series.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto t = suite->Call("GET", "/api/v1/devices/" + dev + "/telemetry?limit=1000");
        if (t.status != 200) return false;
        std::int64_t inferences = 0;
        for (const auto& r : t.body.as_object()["items"].as_array()) {
          if (Str(r, "variant_id") != variant) continue;
          inferences += std::max<std::int64_t>(0, Int(r, "inference_count"));
        }
        return inferences >= 5;
      },
      seconds(30), milliseconds(200)))
      << agent.Log();
  auto t = suite->Call("GET", "/api/v1/devices/" + dev + "/telemetry?limit=1");
  EXPECT_EQ(Str(t.body, "assigned_variant"), variant);
  const auto& newest = t.body.as_object()["items"].as_array().at(0);
  EXPECT_EQ(Str(newest, "variant_id"), variant);
  const auto* probe = newest.as_object().if_contains("probe_accuracy");
  ASSERT_TRUE(probe && probe->is_number()) << t.raw;
  EXPECT_GE(probe->to_number<double>(), 0.0);
  EXPECT_LE(probe->to_number<double>(), 1.0);
  const std::string metrics = suite->Metrics();
  EXPECT_NE(metrics.find("device=\"" + dev + "\""), std::string::npos);
  EXPECT_NE(metrics.find("edgeprune_device_inferences_total"), std::string::npos);
  EXPECT_TRUE(std::regex_search(metrics, std::regex("edgeprune_device_[a-z_]+\\{[^}]*device=\"" +
                                                    dev + "\"[^}]*variant=\"" + variant + "\"")) ||
              std::regex_search(metrics, std::regex("edgeprune_device_[a-z_]+\\{[^}]*variant=\"" +
                                                    variant + "\"[^}]*device=\"" + dev + "\"")))
      << metrics;
  EXPECT_EQ(agent.Stop(), 0) << agent.Log();
}

// 2. One flipped payload byte: refused (never installed), reported with its reason on each
// attempt, refused for good after three; once the bytes are right again a restarted agent
// installs it.
TEST_F(FullLoopTest, FlippedPayloadByteIsRefusedAndReported) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::string sha = Str(v, "sha256");
  ASSERT_EQ(sha.size(), 64u) << bj::serialize(v);
  const std::string blob = suite->data_dir + "/blobs/" + sha.substr(0, 2) + "/" + sha.substr(2);
  const auto offset = static_cast<std::streamoff>(Int(v, "size_bytes") / 2);
  auto flip = [&] {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.good()) << blob;
    f.seekg(offset);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(offset);
    f.write(&c, 1);
  };
  flip();
  struct Restore {
    std::function<void()> fn;
    ~Restore() { if (fn) fn(); }
  } restore{flip};

  Agent agent;
  agent.Start();
  const std::string dev = agent.device_id();
  auto deployed = suite->Deploy(suite->model_a, dev);
  ASSERT_EQ(suite->TargetOf(suite->model_a, deployed), x);
  ASSERT_TRUE(WaitUntil([&] { return suite->Audit("variant.refused", x, dev).size() >= 3; },
                        seconds(60), milliseconds(200)))
      << agent.Log();
  auto refusals = suite->Audit("variant.refused", x, dev);
  ASSERT_EQ(refusals.size(), 3u) << "three attempts, then refused for good";
  for (const auto& e : refusals) {
    EXPECT_NE(Str(e, "detail").find("payload_digest_mismatch"), std::string::npos)
        << bj::serialize(e);
  }
  // Newest first: the last attempt says it gave up.
  EXPECT_NE(Str(refusals.front(), "detail").find("refused for good"), std::string::npos)
      << bj::serialize(refusals.front());
  // Nothing installed: no model serves, the server sees none, no stray files stay behind.
  EXPECT_FALSE(agent.Infer().is_object());
  EXPECT_TRUE(suite->Audit("variant.installed", x, dev).empty());
  auto d = suite->Call("GET", "/api/v1/devices/" + dev);
  EXPECT_EQ(Str(d.body, "installed_variant"), "");
  EXPECT_FALSE(std::filesystem::exists(agent.state_dir() + "/installed.json"));
  EXPECT_EQ(agent.Log().find(": serving " + x), std::string::npos);

  // The operator repairs the blob; a restarted agent tries again and installs it.
  restore.fn();
  restore.fn = nullptr;
  EXPECT_EQ(agent.Stop(), 0);
  agent.Start();
  EXPECT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  EXPECT_EQ(agent.Stop(), 0);
}

// 3. A manifest signed by a key the agent does not trust: refused before any payload byte and
// reported with its reason.
TEST_F(FullLoopTest, ManifestSignedByAnUnknownKeyIsRefusedAndReported) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  const std::string other_trust = suite->dir.Subdir("other-trust");
  auto other = crypto::GenerateEd25519();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(fs::WriteFileAtomic(other_trust + "/other.pub", other->public_pem, 0644).ok());

  Agent agent({}, other_trust);
  agent.Start();
  const std::string dev = agent.device_id();
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil([&] { return !suite->Audit("variant.refused", x, dev).empty(); },
                        seconds(60), milliseconds(200)))
      << agent.Log();
  auto refusals = suite->Audit("variant.refused", x, dev);
  EXPECT_NE(Str(refusals.front(), "detail").find("unknown_signing_key"), std::string::npos)
      << bj::serialize(refusals.front());
  EXPECT_FALSE(agent.Infer().is_object());
  EXPECT_FALSE(std::filesystem::exists(agent.state_dir() + "/variants/.partial/" + x + ".v" +
                                       std::to_string(Int(suite->Variant(suite->model_a, x),
                                                          "version")) +
                                       ".part"))
      << "no payload byte fetched";
  // Refused for good: no second attempt while the assignment stays.
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(suite->Audit("variant.refused", x, dev).size(), 1u);
  EXPECT_EQ(agent.Stop(), 0);
}

// 4. A downgrade: a device's assignment passes through "no variant yet" (a deployment of another
// model still building) and lands on an older variant than the one it runs. The server grants the
// signed roll-back from the installed variant its heartbeats report; without that permission (as
// a server that withheld it would send) the agent refuses, with it the agent installs.

TEST_F(FullLoopTest, DowngradeIsRefusedWithoutRollbackAndInstalledWithIt) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  const std::int64_t x_version = Int(suite->Variant(suite->model_a, x), "version");
  const std::string model_b = suite->UploadMaster("lenet5-b");
  const std::string model_c = suite->UploadMaster("lenet5-c");

  Agent agent;
  agent.Start();
  const std::string dev = agent.device_id();
  // Newer: model B's variant, built now, so its version is above X's.
  auto deployed_b = suite->Deploy(model_b, dev);
  const std::string y = suite->TargetOf(model_b, deployed_b);
  ASSERT_FALSE(y.empty()) << deployed_b.raw;
  ASSERT_TRUE(agent.WaitServing(y, seconds(180))) << agent.Log();
  const std::int64_t y_version = Int(suite->Variant(model_b, y), "version");
  ASSERT_GT(y_version, x_version);
  // The server has recorded (from the heartbeats) that the device runs Y.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto d = suite->Call("GET", "/api/v1/devices/" + dev);
        return d.status == 200 && d.body.is_object() &&
               d.body.as_object().contains("installed_variant") &&
               d.body.as_object().at("installed_variant").is_string() &&
               d.body.as_object().at("installed_variant").as_string() == y;
      },
      seconds(30), milliseconds(200)));
  ASSERT_EQ(agent.Stop(), 0);
  std::this_thread::sleep_for(milliseconds(500));  // the last heartbeat flushed

  // Model C: its build starts, so the device has no assigned variant for a while.
  auto deployed_c = suite->Deploy(model_c, dev);
  const auto& ac = deployed_c.body.as_object().at("assignments").as_array().at(0);
  ASSERT_EQ(Str(ac, "state"), "building") << deployed_c.raw;
  const std::string z = suite->TargetOf(model_c, deployed_c);
  const std::string job = Str(suite->Variant(model_c, z), "job_id");
  // Back to model A: X is ready and older than the Y the device still runs, so the assignment
  // carries the roll-back permission although the last assignment had no variant at all.
  auto deployed_a = suite->Deploy(suite->model_a, dev);
  const auto& aa = deployed_a.body.as_object().at("assignments").as_array().at(0);
  ASSERT_EQ(Str(aa, "variant_id"), x) << deployed_a.raw;
  ASSERT_TRUE(aa.as_object().contains("rollback")) << deployed_a.raw;
  EXPECT_TRUE(aa.as_object().at("rollback").as_bool()) << deployed_a.raw;
  if (!job.empty()) suite->Call("DELETE", "/api/v1/jobs/" + job);

  // Without the permission (as a server that does not grant it would send): refused, Y stays.
  SetRollbackFlag(dev, false);
  agent.Start();
  ASSERT_TRUE(WaitUntil([&] { return !suite->Audit("variant.refused", x, dev).empty(); },
                        seconds(60), milliseconds(200)))
      << agent.Log();
  auto refusals = suite->Audit("variant.refused", x, dev);
  EXPECT_NE(Str(refusals.front(), "detail").find("version_not_newer"), std::string::npos)
      << bj::serialize(refusals.front());
  auto answer = agent.Infer();
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(Str(answer, "variant_id"), y);
  ASSERT_EQ(agent.Stop(), 0);

  // With it, the signed roll-back manifest installs X (a restart forgets the earlier refusal).
  SetRollbackFlag(dev, true);
  agent.Start();
  ASSERT_TRUE(agent.WaitServing(x, seconds(120))) << agent.Log();
  answer = agent.Infer();
  ASSERT_TRUE(answer.is_object());
  EXPECT_EQ(Str(answer, "variant_id"), x);
  EXPECT_EQ(agent.Stop(), 0);
}

}  // namespace
}  // namespace edgeprune::e2e
