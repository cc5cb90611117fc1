// Probe sets shipped with their variant: the agent fetches the set the signed manifest names,
// refuses bytes that do not hash to it or do not fit the variant (nothing installed), checks the
// variant on it with the data set's per-sample shape ([C, L] signals here, not images), keeps it
// with the install and measures the active variant on it for telemetry, also after a restart.
// The agent here has no local probe set at all, so every accuracy comes from the shipped one.
#include "edgeprune/common/wire/probe_file.hpp"
#include "support/build_paths.hpp"
#include "updater_fixture.hpp"

namespace edgeprune::agent {
namespace {

class ProbeDeliveryTest : public UpdaterTest {
 protected:
  ProbeDeliveryTest() {
    task_ = SyntheticTask{3, 8, 16, 4, /*signal=*/true};  // samples [3, 128]
    probe_ = nullptr;
  }

  // The probe file of two samples per class of task_ (labels 0 1 2 3 0 1 2 3).
  std::string ProbeBytes(std::vector<std::int64_t> sample_shape = {3, 128},
                         std::int64_t label_offset = 0) const {
    const auto set = edgeprune::testing::MakeProbeSet(task_, 2);
    wire::ProbeFile p;
    p.sample_shape = std::move(sample_shape);
    p.data = set.data;
    for (auto l : set.labels) p.labels.push_back(l + label_offset);
    return wire::SerializeProbeFile(p);
  }

  // The update stops at its verify step with this error; nothing of the variant is left.
  void ExpectRefusedAtVerify(Agent& agent, const std::string& id, const std::string& code,
                             Retry retry) {
    ASSERT_TRUE(agent.updater.Download(id, kDeviceId).ok());
    const auto payload = agent.updater.pending()->payload_path;
    const auto probe = agent.updater.pending()->probe_path;
    ASSERT_FALSE(probe.empty());
    EXPECT_TRUE(fs::ReadFile(probe).ok());
    auto st = agent.updater.CheckPayload();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, code) << st.error().ToString();
    EXPECT_EQ(st.error().retry, retry);
    EXPECT_FALSE(agent.updater.pending().has_value());
    EXPECT_FALSE(fs::ReadFile(payload).ok());
    EXPECT_FALSE(fs::ReadFile(probe).ok());
  }
};

TEST_F(ProbeDeliveryTest, ShippedProbeSetChecksTheVariantAndStaysWithTheInstall) {
  const auto probe = ProbeBytes();
  ShipProbe(probe, probe, 8);
  Publish("sig-a", 1, /*shift=*/0, /*floor=*/0.9);
  auto agent = StartAgent();
  auto installed = agent->Update("sig-a");
  ASSERT_TRUE(installed.ok()) << installed.error().ToString();
  EXPECT_EQ(server_.probe_requests.load(), 1);
  // Kept next to the payload, byte for byte.
  EXPECT_EQ(fs::ReadFile(VariantStore::ProbePath(*installed)).value(), probe);
  // Telemetry's probe: the active variant on the shipped samples, batch 1 with shape [1, 3, 128].
  auto measured = ModelRuntime::ProbeOwn(*agent->runtime.active());
  ASSERT_TRUE(measured.ok()) << measured.error().ToString();
  ASSERT_TRUE(measured->has_value());
  EXPECT_DOUBLE_EQ((*measured)->accuracy, 1.0);
  EXPECT_EQ((*measured)->latency.count, 8);
  auto r = agent->runtime.Infer(edgeprune::testing::MakeSample(task_, 2), {1, 3, 128});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->class_index, 2);

  // A restart restores the variant with its stored probe set (verified again).
  agent.reset();
  auto restarted = StartAgent();
  auto restored = restarted->updater.RestoreInstalled();
  ASSERT_TRUE(restored.ok()) << restored.error().ToString();
  ASSERT_TRUE(restored->has_value());
  auto again = ModelRuntime::ProbeOwn(*restarted->runtime.active());
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_DOUBLE_EQ((*again)->accuracy, 1.0);

  // A stored probe set changed on disk: the install no longer restores (and nothing serves).
  ASSERT_TRUE(fs::WriteFileAtomic(VariantStore::ProbePath(*installed), probe + "x").ok());
  auto tampered = StartAgent();
  auto refused = tampered->updater.RestoreInstalled();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "probe_size_mismatch");
  EXPECT_FALSE(tampered->runtime.active_spec().has_value());
}

TEST_F(ProbeDeliveryTest, VariantFailingItsShippedProbeSetIsNeverInstalled) {
  const auto probe = ProbeBytes();
  ShipProbe(probe, probe, 8);
  Publish("good", 1);
  auto agent = StartAgent();
  ASSERT_TRUE(agent->Update("good").ok());
  // Shifted templates get every shipped sample wrong; no local set exists to blame.
  Publish("bad", 2, /*shift=*/1, /*floor=*/0.5);
  ASSERT_TRUE(agent->updater.Download("bad", kDeviceId).ok());
  ASSERT_TRUE(agent->updater.CheckPayload().ok());
  auto checked = agent->updater.CheckModel();
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().code, "probe_accuracy_below_floor");
  EXPECT_NE(checked.error().message.find("scored 0.000000"), std::string::npos)
      << checked.error().message;
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "good");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

TEST_F(ProbeDeliveryTest, ProbeBytesNotMatchingTheSignedDigestAreRefused) {
  const auto probe = ProbeBytes();
  auto agent = StartAgent();
  // Same size, one value changed: the digest differs.
  std::string damaged = probe;
  damaged[damaged.size() - 1] ^= 0x01;
  ShipProbe(probe, damaged, 8);
  Publish("damaged", 1);
  ExpectRefusedAtVerify(*agent, "damaged", "probe_digest_mismatch", Retry::kLimited);
  // One byte more than signed.
  ShipProbe(probe, probe + "x", 8);
  Publish("padded", 1);
  ExpectRefusedAtVerify(*agent, "padded", "probe_size_mismatch", Retry::kLimited);
  EXPECT_FALSE(agent->store.InstalledVersion().has_value());
  EXPECT_FALSE(agent->runtime.active_spec().has_value());

  // The whole update through the states: refused, reported, nothing serves.
  ShipProbe(probe, damaged, 8);
  Publish("damaged-again", 1);
  EXPECT_FALSE(agent->Update("damaged-again").ok());
  EXPECT_FALSE(agent->store.InstalledVersion().has_value());
  EXPECT_FALSE(agent->runtime.active_spec().has_value());
}

TEST_F(ProbeDeliveryTest, SignedProbeSetsThatDoNotFitTheVariantAreRefusedForGood) {
  auto agent = StartAgent();
  // Images where the variant takes signals.
  const auto images = ProbeBytes({3, 8, 16});
  ShipProbe(images, images, 8);
  Publish("images", 1);
  ExpectRefusedAtVerify(*agent, "images", "probe_shape_mismatch", Retry::kPermanent);
  // A label beyond the variant's 4 classes.
  const auto labels = ProbeBytes({3, 128}, /*label_offset=*/1);
  ShipProbe(labels, labels, 8);
  Publish("labels", 1);
  ExpectRefusedAtVerify(*agent, "labels", "probe_shape_mismatch", Retry::kPermanent);
  // Fewer samples than the manifest names.
  const auto good = ProbeBytes();
  ShipProbe(good, good, 9);
  Publish("count", 1);
  ExpectRefusedAtVerify(*agent, "count", "probe_shape_mismatch", Retry::kPermanent);
  // Not a probe file at all, though signed.
  ShipProbe("not a probe set", "not a probe set", 8);
  Publish("garbage", 1);
  ExpectRefusedAtVerify(*agent, "garbage", "probe_invalid", Retry::kPermanent);
  EXPECT_FALSE(agent->store.InstalledVersion().has_value());
  EXPECT_FALSE(agent->runtime.active_spec().has_value());
}

TEST_F(ProbeDeliveryTest, AProbeSetTheServerDoesNotAnswerStopsTheDownload) {
  const auto probe = ProbeBytes();
  ShipProbe(probe, "", 8);  // the manifest names one, the server answers 404
  Publish("missing", 1);
  auto agent = StartAgent();
  auto st = agent->updater.Download("missing", kDeviceId);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "probe_fetch_failed");
  EXPECT_EQ(st.error().retry, Retry::kTransient);
  EXPECT_FALSE(agent->updater.pending().has_value());
  EXPECT_FALSE(agent->store.InstalledVersion().has_value());
}

}  // namespace
}  // namespace edgeprune::agent
