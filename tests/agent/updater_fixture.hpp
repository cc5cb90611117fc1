#pragma once
// The fixture of the agent's update tests (tests/agent/download/, tests/agent/state/): a real
// HTTPS server publishing real signed manifests and real TorchScript payloads, and an agent's
// updating half (store, runtime, updater, AgentContext and its download/verify/install states).
//
// Thread-safety: one per test, on the test's thread.

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "agent/download/variant_updater.hpp"
#include "agent/state/states.hpp"
#include "download_test_server.hpp"
#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "runtime_fixture_models.hpp"
#include "support/build_paths.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {

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

  static constexpr const char* kDeviceId = "dev-updater-test";

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
    if (rollback) {  // bound to the test agent's identity, valid for an hour
      m.device_id = kDeviceId;
      m.expires_at = NowMs() / 1000 + 3600;
    }
    m.payload = {crypto::Sha256Hex(payload), static_cast<std::int64_t>(payload.size())};
    m.input_shape = task_.input_shape();
    m.num_classes = task_.classes;
    m.metrics.accuracy = 1.0;
    m.metrics.accuracy_floor = floor;
    m.created_at = 1700000000;
    m.key_id = key_id_;
    if (probe_to_ship_) {
      const auto& [named, served, samples] = *probe_to_ship_;
      m.probe = wire::ManifestProbe{crypto::Sha256Hex(named),
                                    static_cast<std::int64_t>(named.size()), samples};
    }
    const auto bytes = wire::SerializeManifest(m);
    server_.AddVariant(
        id, {bytes, sign ? crypto::Ed25519Sign(keys_.private_pem, bytes).value() : "", payload,
             probe_to_ship_ ? std::get<1>(*probe_to_ship_) : ""});
    return m;
  }

  // Variants published from now on ship a probe set: the signed manifest names `named` (its
  // digest and size, and `samples`), the server answers `served` (the same bytes unless a test
  // damages them).
  void ShipProbe(std::string named, std::string served, std::int64_t samples) {
    probe_to_ship_.emplace(std::move(named), std::move(served), samples);
  }
  std::optional<std::tuple<std::string, std::string, std::int64_t>> probe_to_ship_;

  // The agent's updating half: its store, runtime and updater, and the state the download,
  // verify and install states share (reports go nowhere unless a test says otherwise).
  struct Agent {
    VariantStore store;
    ModelRuntime runtime{RuntimeOptions{1, 1, edgeprune::testing::AgentTorchModule()}};
    VariantUpdater updater;
    AgentContext ctx;
    std::unique_ptr<StateHandler> download, verify, install;
    Agent(VariantStore s, http::HttpsClient* client, std::shared_ptr<const TrustedKeyring> ring,
          std::shared_ptr<const ProbeSet> probe, StateDir dir)
        : store(std::move(s)),
          updater([client]() -> Result<http::HttpsClient*> { return client; }, std::move(ring),
                  store, runtime, std::move(probe)),
          ctx(AgentSettings{}, std::move(dir)) {
      ctx.updater = &updater;
      ctx.identity = Identity{};
      ctx.identity->device_id = kDeviceId;
      ctx.report = [](const std::string&, const std::string&, const std::string&) { return true; };
      download = MakeDownloadState(ctx);
      verify = MakeVerifyState(ctx);
      install = MakeInstallState(ctx);
    }

    // What the last heartbeat answer would have said.
    void Desire(const std::string& variant_id) {
      wire::HeartbeatResponse hb;
      hb.desired_state.variant_id = variant_id;
      ctx.last_heartbeat = hb;
    }

    // The agent's real update path for one variant: the download, verify and install states in
    // turn, as the machine runs them after a heartbeat asked for `variant_id`.
    Result<InstalledVariant> Update(const std::string& variant_id) {
      Desire(variant_id);
      for (StateHandler* step : {download.get(), verify.get(), install.get()}) {
        const StepResult r = step->Run();
        if (r.event != Event::kDone) {
          return MakeError(ErrorKind::kInternal, "update_failed",
                           std::string(EventName(r.event)) + ": " + r.detail);
        }
      }
      auto record = store.Load();
      if (!record.ok()) return record.error();
      return *record->current;
    }
  };

  std::unique_ptr<Agent> StartAgent() {
    auto store = VariantStore::Open(dir_.File("state/variants"), dir_.File("state/installed.json"));
    EXPECT_TRUE(store.ok());
    auto state = StateDir::Open(dir_.File("state"));
    EXPECT_TRUE(state.ok());
    return std::make_unique<Agent>(std::move(store).value(), client_.get(), keyring_, probe_,
                                   std::move(state).value());
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

}  // namespace edgeprune::agent
