// The whole download → verify → install path against a real HTTPS server, with real signed
// manifests and real TorchScript payloads, and the restore of the installed variant at start-up.
#include <gtest/gtest.h>

#include "agent/download/update_states.hpp"
#include "agent/download/variant_updater.hpp"
#include "download_test_server.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "runtime_fixture_models.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

using edgeprune::testing::SyntheticTask;

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = crypto::GenerateEd25519().value();
    auto ring = std::make_shared<TrustedKeyring>();
    key_id_ = ring->Add(keys_.public_pem).value();
    keyring_ = ring;
    client_ = server_.MakeClient();
  }

  // Publishes a variant: a real model file, a signed manifest naming it.
  wire::VariantManifest Publish(const std::string& id, std::int64_t version, std::int64_t shift = 0,
                                double floor = 0.9, bool sign = true, bool rollback = false) {
    const auto path = dir_.File("src-" + id + ".pt");
    edgeprune::testing::WriteTemplateModel(path, task_, shift);
    return PublishPayload(id, version, fs::ReadFile(path).value(), floor, sign, rollback);
  }

  // Publishes `payload` as a variant under a manifest signed with the trusted key.
  wire::VariantManifest PublishPayload(const std::string& id, std::int64_t version,
                                       const std::string& payload, double floor = 0.9,
                                       bool sign = true, bool rollback = false) {
    wire::VariantManifest m;
    m.model_id = "synthetic";
    m.variant_id = id;
    m.version = version;
    m.rollback = rollback;
    m.payload = {crypto::Sha256Hex(payload), static_cast<std::int64_t>(payload.size())};
    m.input_shape = task_.input_shape();
    m.num_classes = task_.classes;
    m.metrics.accuracy = 1.0;
    m.metrics.accuracy_floor = floor;
    m.created_at = 1700000000;
    m.key_id = key_id_;
    const auto bytes = wire::SerializeManifest(m);
    server_.AddVariant(id, {bytes, sign ? crypto::Ed25519Sign(keys_.private_pem, bytes).value() : "",
                            payload});
    return m;
  }

  struct Agent {
    VariantStore store;
    ModelRuntime runtime{RuntimeOptions{1, 1, EDGEPRUNE_AGENT_TORCH_MODULE}};
    VariantUpdater updater;
    Agent(VariantStore s, http::HttpsClient* client, std::shared_ptr<const TrustedKeyring> ring,
          std::shared_ptr<const ProbeSet> probe)
        : store(std::move(s)),
          updater([client]() -> Result<http::HttpsClient*> { return client; }, std::move(ring),
                  store, runtime, std::move(probe)) {}
  };

  std::unique_ptr<Agent> StartAgent() {
    auto store = VariantStore::Open(dir_.File("state/variants"), dir_.File("state/installed.json"));
    EXPECT_TRUE(store.ok());
    return std::make_unique<Agent>(std::move(store).value(), client_.get(), keyring_, probe_);
  }

  SyntheticTask task_{1, 8, 8, 4};
  edgeprune::testing::TempDir dir_{"updater-test"};
  edgeprune::testing::AgentTestServer server_{dir_.path()};
  std::unique_ptr<http::HttpsClient> client_;
  crypto::Ed25519KeyPair keys_;
  std::string key_id_;
  std::shared_ptr<const TrustedKeyring> keyring_;
  std::shared_ptr<const ProbeSet> probe_ =
      std::make_shared<ProbeSet>(edgeprune::testing::MakeProbeSet(task_, 3));
};

TEST_F(UpdaterTest, DownloadsVerifiesInstallsAndServes) {
  Publish("var-a", 1);
  auto agent = StartAgent();
  auto installed = agent->updater.Update("var-a");
  ASSERT_TRUE(installed.ok()) << installed.error().ToString();
  EXPECT_EQ(installed->version, 1);
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
  auto r = agent->runtime.Infer(edgeprune::testing::MakeSample(task_, 3), task_.input_shape());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->class_index, 3);
  EXPECT_EQ(r->variant_id, "var-a");

  Publish("var-b", 2);
  ASSERT_TRUE(agent->updater.Update("var-b").ok());
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "var-b");
  EXPECT_EQ(agent->store.Load()->previous->variant_id, "var-a");
}

TEST_F(UpdaterTest, UnsignedAndStaleManifestsAreRefusedBeforeAnyPayloadByte) {
  Publish("var-a", 5);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->updater.Update("var-a").ok());
  const int payload_requests = server_.payload_requests.load();

  Publish("unsigned", 9, 0, 0.9, /*sign=*/false);
  auto unsigned_ = agent->updater.Download("unsigned");
  ASSERT_FALSE(unsigned_.ok());
  EXPECT_EQ(unsigned_.error().code, "manifest_unsigned");

  Publish("old", 4);
  auto old = agent->updater.Download("old");
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().code, "version_not_newer");
  EXPECT_EQ(server_.payload_requests.load(), payload_requests);

  // A signed rollback to an older version is allowed.
  Publish("rollback", 3, 0, 0.9, true, /*rollback=*/true);
  auto back = agent->updater.Update("rollback");
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "rollback");

  auto missing = agent->updater.Download("absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "variant_not_offered");
}

// A desired variant the server no longer offers (404/403 on its manifest): the download state
// does not retry it in place (the desired variant only changes with a heartbeat, which it does
// not send) but passes through to serve without a report, and may take it again later.
TEST_F(UpdaterTest, VariantNoLongerOfferedSendsTheFlowBackToServing) {
  auto agent = StartAgent();
  std::vector<std::string> reports;
  auto flow = std::make_shared<UpdateFlow>();
  flow->updater = &agent->updater;
  flow->desired_variant = []() -> std::optional<std::string> { return "withdrawn"; };
  flow->report = [&](const std::string& id, const std::string& event, const std::string&) {
    reports.push_back(id + " " + event);
    return true;
  };
  auto download = MakeDownloadState(flow);
  auto first = download->Run();
  EXPECT_EQ(first.event, Event::kDone);
  EXPECT_EQ(first.detail, "not offered: withdrawn");
  EXPECT_TRUE(reports.empty());
  EXPECT_EQ(flow->refused.count("withdrawn"), 0u);
  EXPECT_EQ(MakeVerifyState(flow)->Run().event, Event::kDone);
  EXPECT_EQ(MakeInstallState(flow)->Run().detail, "nothing to install");
  // Offered again later: it installs.
  Publish("withdrawn", 1);
  EXPECT_EQ(download->Run().event, Event::kDone);
  EXPECT_EQ(MakeVerifyState(flow)->Run().event, Event::kDone);
  EXPECT_EQ(MakeInstallState(flow)->Run().event, Event::kDone);
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "withdrawn");
}

TEST_F(UpdaterTest, VariantFailingItsProbeCheckIsNeverInstalled) {
  Publish("good", 1);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->updater.Update("good").ok());
  Publish("bad", 2, /*shift=*/1, /*floor=*/0.8);
  ASSERT_TRUE(agent->updater.Download("bad").ok());
  const auto partial = agent->updater.pending()->payload_path;
  auto verified = agent->updater.Verify();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, "probe_accuracy_below_floor");
  EXPECT_FALSE(fs::ReadFile(partial).ok());
  EXPECT_EQ(agent->updater.Install().error().code, "no_pending_update");
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "good");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

TEST_F(UpdaterTest, SignedVariantCallingAForbiddenOperatorIsRefusedBeforeItRuns) {
  Publish("good", 1);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->updater.Update("good").ok());
  // Signed with the trusted key, as a stolen signing key would allow: the agent's own operator
  // check still refuses it, before loading it runs anything.
  const auto hostile = fs::ReadFile(std::string(EDGEPRUNE_SOURCE_DIR) +
                                    "/tests/fixtures/hostile/save_tensor.pt");
  ASSERT_TRUE(hostile.ok());
  PublishPayload("evil", 2, *hostile);
  ASSERT_TRUE(agent->updater.Download("evil").ok());
  auto verified = agent->updater.Verify();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, "forbidden_operator");
  EXPECT_NE(verified.error().message.find("aten::save"), std::string::npos)
      << verified.error().message;
  EXPECT_TRUE(IsPermanentRefusal("forbidden_operator"));
  EXPECT_FALSE(fs::ReadFile("edgeprune-target.bin").ok());  // the file it would have written
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "good");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

TEST_F(UpdaterTest, RestartRestoresTheInstalledVariantAndFallsBackWhenItIsTampered) {
  Publish("first", 1);
  Publish("second", 2);
  {
    auto agent = StartAgent();
    ASSERT_TRUE(agent->updater.Update("first").ok());
    ASSERT_TRUE(agent->updater.Update("second").ok());
  }
  {
    auto restarted = StartAgent();
    auto restored = restarted->updater.RestoreInstalled();
    ASSERT_TRUE(restored.ok()) << restored.error().ToString();
    ASSERT_TRUE(restored->has_value());
    EXPECT_EQ((*restored)->variant_id, "second");
    EXPECT_EQ(restarted->runtime.active_spec()->variant_id, "second");
  }
  // Tamper with the installed payload: the restart must refuse it and fall back.
  auto record = StartAgent()->store.Load().value();
  ASSERT_TRUE(fs::WriteFileAtomic(record.current->payload_path, "tampered").ok());
  auto restarted = StartAgent();
  auto restored = restarted->updater.RestoreInstalled();
  ASSERT_TRUE(restored.ok()) << restored.error().ToString();
  EXPECT_EQ((*restored)->variant_id, "first");
  EXPECT_EQ(restarted->runtime.active_spec()->variant_id, "first");
  EXPECT_EQ(restarted->store.Load()->current->variant_id, "first");
}

// A payload whose bytes differ from the signed manifest: each attempt is refused and reported
// with its reason, retried (kFailed → backoff) from byte 0, and refused for good after
// max_integrity_attempts; a retry that gets the right bytes installs and clears the count.
TEST_F(UpdaterTest, CorruptPayloadIsReportedEveryTimeRetriedAndRefusedForGoodAfterTheLimit) {
  Publish("fixed", 1);
  Publish("flipped", 2);
  auto agent = StartAgent();
  std::vector<std::string> reports;
  auto flow = std::make_shared<UpdateFlow>();
  flow->updater = &agent->updater;
  std::string desired = "fixed";
  flow->desired_variant = [&desired]() -> std::optional<std::string> { return desired; };
  bool server_reachable = true;
  flow->report = [&](const std::string& id, const std::string& event, const std::string& reason) {
    if (!server_reachable) return false;
    reports.push_back(id + " " + event + " " + reason);
    return true;
  };
  auto download = MakeDownloadState(flow);
  auto verify = MakeVerifyState(flow);
  auto install = MakeInstallState(flow);

  // "fixed" is damaged once, then served right: the retry installs it.
  edgeprune::testing::TestVariant good = server_.Variant("fixed");
  edgeprune::testing::TestVariant bad = good;
  bad.payload[bad.payload.size() / 2] ^= 0x01;
  server_.AddVariant("fixed", bad);
  EXPECT_EQ(download->Run().event, Event::kFailed);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("fixed refused payload_digest_mismatch"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("attempt 1 of 3, retrying"), std::string::npos) << reports[0];
  EXPECT_EQ(flow->integrity_failures["fixed"], 1);
  server_.AddVariant("fixed", good);
  EXPECT_EQ(download->Run().event, Event::kDone);
  EXPECT_EQ(verify->Run().event, Event::kDone);
  EXPECT_EQ(install->Run().event, Event::kDone);
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "fixed");
  EXPECT_EQ(flow->integrity_failures.count("fixed"), 0u);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1], "fixed installed version 1");

  // "flipped" stays damaged: three reported refusals, then refused for good, never installed.
  // The server cannot take the first two reports: they wait and go out, in order, with the third.
  edgeprune::testing::TestVariant flipped = server_.Variant("flipped");
  flipped.payload[0] ^= 0x80;
  server_.AddVariant("flipped", flipped);
  desired = "flipped";
  server_reachable = false;
  EXPECT_EQ(download->Run().event, Event::kFailed);
  EXPECT_EQ(download->Run().event, Event::kFailed);
  EXPECT_EQ(flow->unsent.size(), 2u);
  EXPECT_EQ(reports.size(), 2u);
  server_reachable = true;
  EXPECT_EQ(download->Run().event, Event::kDone);
  EXPECT_TRUE(flow->unsent.empty());
  ASSERT_EQ(reports.size(), 5u);
  EXPECT_NE(reports[2].find("attempt 1 of 3"), std::string::npos) << reports[2];
  EXPECT_NE(reports[3].find("attempt 2 of 3"), std::string::npos) << reports[3];
  for (std::size_t i = 2; i < 5; ++i) {
    EXPECT_NE(reports[i].find("flipped refused payload_digest_mismatch"), std::string::npos)
        << reports[i];
  }
  EXPECT_NE(reports[4].find("attempt 3 of 3, refused for good"), std::string::npos) << reports[4];
  EXPECT_EQ(flow->refused.count("flipped"), 1u);
  EXPECT_FALSE(agent->updater.pending().has_value());
  EXPECT_EQ(download->Run().detail, "nothing to download");
  EXPECT_EQ(reports.size(), 5u) << "a variant refused for good is not fetched again";
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "fixed");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

}  // namespace
}  // namespace edgeprune::agent
