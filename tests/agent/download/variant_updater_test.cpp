// The updater's mechanism (download, checks, install, restore) against a real HTTPS server, with
// real signed manifests and real TorchScript payloads; whole updates run through the agent's
// download, verify and install states (tests/agent/updater_fixture.hpp).
#include "support/build_paths.hpp"
#include "updater_fixture.hpp"

namespace edgeprune::agent {
namespace {

TEST_F(UpdaterTest, DownloadsVerifiesInstallsAndServes) {
  Publish("var-a", 1);
  auto agent = StartAgent();
  auto installed = agent->Update("var-a");
  ASSERT_TRUE(installed.ok()) << installed.error().ToString();
  EXPECT_EQ(installed->version, 1);
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
  auto r = agent->runtime.Infer(edgeprune::testing::MakeSample(task_, 3), task_.input_shape());
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->class_index, 3);
  EXPECT_EQ(r->variant_id, "var-a");

  Publish("var-b", 2);
  ASSERT_TRUE(agent->Update("var-b").ok());
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "var-b");
  EXPECT_EQ(agent->store.Load()->previous->variant_id, "var-a");
}

TEST_F(UpdaterTest, ARollbackToThePreviousVariantIsALocalSwapWithoutADownload) {
  Publish("var-a", 1);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->Update("var-a").ok());
  Publish("var-b", 2);
  ASSERT_TRUE(agent->Update("var-b").ok());
  const int payload_requests = server_.payload_requests.load();
  // The server signs a roll-back to var-a: same bytes, kept as previous.
  Publish("var-a", 1, 0, 0.9, true, /*rollback=*/true);
  auto back = agent->Update("var-a");
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(server_.payload_requests.load(), payload_requests) << "no payload fetched";
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "var-a");
  EXPECT_EQ(agent->store.Load()->current->variant_id, "var-a");
  EXPECT_EQ(agent->store.Load()->previous->variant_id, "var-b");
  // Bytes that differ from what is kept are downloaded, and their digest decides.
  Publish("var-b", 2, /*shift=*/1, 0.0, true, /*rollback=*/true);
  ASSERT_TRUE(agent->Update("var-b").ok());
  EXPECT_GT(server_.payload_requests.load(), payload_requests);
}

TEST_F(UpdaterTest, UnsignedAndStaleManifestsAreRefusedBeforeAnyPayloadByte) {
  Publish("var-a", 5);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->Update("var-a").ok());
  const int payload_requests = server_.payload_requests.load();

  Publish("unsigned", 9, 0, 0.9, /*sign=*/false);
  auto unsigned_ = agent->updater.Download("unsigned", kDeviceId);
  ASSERT_FALSE(unsigned_.ok());
  EXPECT_EQ(unsigned_.error().code, "manifest_unsigned");

  Publish("old", 4);
  auto old = agent->updater.Download("old", kDeviceId);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().code, "version_not_newer");
  EXPECT_EQ(server_.payload_requests.load(), payload_requests);

  // A signed rollback for another device is refused before any payload byte: a permission
  // captured from one gateway downgrades no other.
  Publish("rollback", 3, 0, 0.9, true, /*rollback=*/true);
  auto foreign = agent->updater.Download("rollback", "dev-someone-else");
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, "rollback_not_for_device");
  EXPECT_EQ(server_.payload_requests.load(), payload_requests);

  // A signed rollback to an older version, for this device and still valid, is allowed.
  Publish("rollback", 3, 0, 0.9, true, /*rollback=*/true);
  auto back = agent->Update("rollback");
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "rollback");

  auto missing = agent->updater.Download("absent", kDeviceId);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "variant_not_offered");
}

TEST_F(UpdaterTest, VariantFailingItsProbeCheckIsNeverInstalled) {
  Publish("good", 1);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->Update("good").ok());
  Publish("bad", 2, /*shift=*/1, /*floor=*/0.8);
  ASSERT_TRUE(agent->updater.Download("bad", kDeviceId).ok());
  const auto partial = agent->updater.pending()->payload_path;
  ASSERT_TRUE(agent->updater.CheckPayload().ok());
  auto verified = agent->updater.CheckModel();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, "probe_accuracy_below_floor");
  EXPECT_EQ(verified.error().retry, Retry::kPermanent);
  EXPECT_FALSE(fs::ReadFile(partial).ok());
  EXPECT_EQ(agent->updater.Install().error().code, "no_pending_update");
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "good");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

TEST_F(UpdaterTest, SignedVariantCallingAForbiddenOperatorIsRefusedBeforeItRuns) {
  Publish("good", 1);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->Update("good").ok());
  // Signed with the trusted key, as a stolen signing key would allow: the agent's own operator
  // check still refuses it, before loading it runs anything.
  const auto hostile = fs::ReadFile(edgeprune::testing::SourceDir() +
                                    "/tests/fixtures/hostile/save_tensor.pt");
  ASSERT_TRUE(hostile.ok());
  PublishPayload("evil", 2, *hostile);
  ASSERT_TRUE(agent->updater.Download("evil", kDeviceId).ok());
  ASSERT_TRUE(agent->updater.CheckPayload().ok());
  auto verified = agent->updater.CheckModel();
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, "forbidden_operator");
  EXPECT_NE(verified.error().message.find("aten::save"), std::string::npos)
      << verified.error().message;
  EXPECT_EQ(verified.error().retry, Retry::kPermanent);
  EXPECT_FALSE(fs::ReadFile("edgeprune-target.bin").ok());  // the file it would have written
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "good");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

TEST_F(UpdaterTest, RestartRestoresTheInstalledVariantAndFallsBackWhenItIsTampered) {
  Publish("first", 1);
  Publish("second", 2);
  {
    auto agent = StartAgent();
    ASSERT_TRUE(agent->Update("first").ok());
    ASSERT_TRUE(agent->Update("second").ok());
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

}  // namespace
}  // namespace edgeprune::agent
