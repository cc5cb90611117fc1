// Manifest codec, trusted keyring, signature/version/payload verification and the variant store.
#include <gtest/gtest.h>

#include "agent/download/keyring.hpp"
#include "agent/download/manifest_verifier.hpp"
#include "agent/download/variant_store.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/wire/manifest.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

wire::VariantManifest SampleManifest(const std::string& key_id, const std::string& payload) {
  wire::VariantManifest m;
  m.model_id = "fashion-cnn";
  m.variant_id = "fashion-cnn-r50";
  m.version = 3;
  m.payload.sha256 = crypto::Sha256Hex(payload);
  m.payload.size_bytes = static_cast<std::int64_t>(payload.size());
  m.input_shape = {1, 1, 28, 28};
  m.num_classes = 10;
  m.normalize.mean = {0.2860};
  m.normalize.std = {0.3530};
  m.metrics.accuracy = 0.89;
  m.metrics.accuracy_floor = 0.8;
  m.metrics.params = 12345;
  m.metrics.macs = 678900;
  m.budget.max_macs = 1000000;
  m.created_at = 1700000000;
  m.key_id = key_id;
  return m;
}

struct Signer {
  crypto::Ed25519KeyPair keys = crypto::GenerateEd25519().value();
  std::string key_id = crypto::Ed25519KeyId(keys.public_pem).value();
  std::string Sign(const std::string& bytes) const {
    return crypto::Ed25519Sign(keys.private_pem, bytes).value();
  }
};

TEST(ManifestCodecTest, RoundTripsExactly) {
  auto m = SampleManifest("0123456789abcdef", "payload");
  const auto bytes = wire::SerializeManifest(m);
  auto parsed = wire::ParseManifest(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(wire::SerializeManifest(*parsed), bytes);
  EXPECT_EQ(parsed->input_shape, m.input_shape);
  EXPECT_EQ(parsed->normalize.mean, m.normalize.mean);
  EXPECT_EQ(parsed->budget.max_macs, m.budget.max_macs);
  EXPECT_FALSE(parsed->rollback);
}

TEST(ManifestCodecTest, RefusesMalformedFieldsNamingThem) {
  auto m = SampleManifest("0123456789abcdef", "payload");
  auto with = [&](auto edit) {
    auto o = wire::ToJson(m);
    edit(o);
    return wire::ParseManifest(json::Serialize(o));
  };
  auto unknown = with([](auto& o) { o["extra"] = 1; });
  EXPECT_EQ(unknown.error().code, "unknown_field");
  auto sha = with([](auto& o) { o["payload"].as_object()["sha256"] = "abc"; });
  EXPECT_NE(sha.error().message.find("payload.sha256"), std::string::npos);
  auto batch = with([](auto& o) { o["input_shape"] = boost::json::array{2, 1, 28, 28}; });
  EXPECT_NE(batch.error().message.find("input_shape"), std::string::npos);
  auto version = with([](auto& o) { o["version"] = 0; });
  EXPECT_NE(version.error().message.find("version"), std::string::npos);
  auto channels = with([](auto& o) {
    o["normalize"] = {{"mean", boost::json::array{0.1, 0.2}}, {"std", boost::json::array{1, 1}}};
  });
  EXPECT_NE(channels.error().message.find("normalize"), std::string::npos);
  EXPECT_EQ(wire::ParseManifest("{not json").error().code, "invalid_json");
  EXPECT_EQ(wire::ParseManifest(std::string(wire::kMaxManifestBytes + 1, ' ')).error().code,
            "manifest_too_large");
}

TEST(KeyringTest, LoadsEveryKeyOfADirectoryAndRefusesBadFiles) {
  edgeprune::testing::TempDir dir;
  Signer a, b;
  dir.WriteFile("keys/a.pem", a.keys.public_pem);
  dir.WriteFile("keys/b.pub", b.keys.public_pem);
  dir.WriteFile("keys/README", "not a key, ignored");
  auto ring = TrustedKeyring::LoadDir(dir.File("keys"));
  ASSERT_TRUE(ring.ok()) << ring.error().ToString();
  EXPECT_EQ(ring->key_ids().size(), 2u);
  EXPECT_TRUE(ring->Find(a.key_id).has_value());
  EXPECT_TRUE(ring->Find(b.key_id).has_value());
  EXPECT_FALSE(ring->Find("ffffffffffffffff").has_value());

  auto bad_path = dir.WriteFile("bad/private.pem", a.keys.private_pem);
  auto bad = TrustedKeyring::LoadDir(dir.File("bad"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(bad_path), std::string::npos);

  auto missing = TrustedKeyring::LoadDir(dir.File("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "keyring_unreadable");
}

class VerifierTest : public ::testing::Test {
 protected:
  Signer trusted_, rotated_, stranger_;
  std::shared_ptr<TrustedKeyring> ring_ = std::make_shared<TrustedKeyring>();
  void SetUp() override {
    ASSERT_TRUE(ring_->Add(trusted_.keys.public_pem).ok());
    ASSERT_TRUE(ring_->Add(rotated_.keys.public_pem).ok());
  }
};

TEST_F(VerifierTest, AcceptsManifestsSignedByAnyTrustedKey) {
  ManifestVerifier verifier(ring_);
  for (const Signer* s : {&trusted_, &rotated_}) {
    auto bytes = wire::SerializeManifest(SampleManifest(s->key_id, "payload"));
    auto m = verifier.Verify(bytes, s->Sign(bytes));
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    EXPECT_EQ(m->key_id, s->key_id);
  }
}

TEST_F(VerifierTest, RefusalsHaveDistinctCodes) {
  ManifestVerifier verifier(ring_);
  auto bytes = wire::SerializeManifest(SampleManifest(trusted_.key_id, "payload"));

  auto unsigned_ = verifier.Verify(bytes, "");
  EXPECT_EQ(unsigned_.error().code, "manifest_unsigned");
  EXPECT_EQ(unsigned_.error().kind, ErrorKind::kPermissionDenied);

  auto foreign = wire::SerializeManifest(SampleManifest(stranger_.key_id, "payload"));
  EXPECT_EQ(verifier.Verify(foreign, stranger_.Sign(foreign)).error().code, "unknown_signing_key");

  // Signed by a stranger while claiming a trusted key id.
  EXPECT_EQ(verifier.Verify(bytes, stranger_.Sign(bytes)).error().code, "bad_signature");

  // One byte changed after signing: version 3 → 4.
  auto sig = trusted_.Sign(bytes);
  auto tampered = bytes;
  tampered.replace(tampered.find("\"version\":3"), 11, "\"version\":4");
  EXPECT_EQ(verifier.Verify(tampered, sig).error().code, "bad_signature");

  EXPECT_EQ(ManifestVerifier(nullptr).Verify(bytes, sig).error().code, "unknown_signing_key");
  ASSERT_TRUE(verifier.Verify(bytes, sig).ok());

  // Every refusal is permanent: the server sends the same bytes again. So are manifests that do
  // not parse.
  for (const auto& refused :
       {verifier.Verify(bytes, ""), verifier.Verify(foreign, stranger_.Sign(foreign)),
        verifier.Verify(bytes, stranger_.Sign(bytes)), verifier.Verify(tampered, sig),
        verifier.Verify("{not json", sig)}) {
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().retry, Retry::kPermanent) << refused.error().ToString();
  }
}

TEST_F(VerifierTest, VersionMustIncreaseUnlessSignedRollback) {
  auto m = SampleManifest(trusted_.key_id, "payload");
  constexpr std::int64_t kNow = 1'800'000'000;
  const auto check = [&](std::optional<std::int64_t> installed, const char* device = "dev-1") {
    return ManifestVerifier::CheckVersion(m, installed, device, kNow);
  };
  EXPECT_TRUE(check(std::nullopt).ok());
  EXPECT_TRUE(check(2).ok());
  auto same = check(3);
  EXPECT_EQ(same.error().code, "version_not_newer");
  EXPECT_EQ(check(7).error().code, "version_not_newer");
  EXPECT_EQ(same.error().retry, Retry::kPermanent);
  m.rollback = true;
  m.device_id = "dev-1";
  m.expires_at = kNow + 60;
  EXPECT_TRUE(check(7).ok());
  // Bound to one device: a copy replayed to another is refused, even as an upgrade.
  EXPECT_EQ(check(7, "dev-2").error().code, "rollback_not_for_device");
  EXPECT_EQ(check(1, "dev-2").error().code, "rollback_not_for_device");
  EXPECT_EQ(check(7, "dev-2").error().retry, Retry::kPermanent);
  // And it expires: the server signs a fresh one per request, so a later fetch may succeed.
  m.expires_at = kNow;
  EXPECT_EQ(check(7).error().code, "rollback_expired");
  EXPECT_EQ(check(7).error().retry, Retry::kLimited);
}

TEST(ManifestWire, RollbackNeedsADeviceAndAnExpiryAndOnlyRollbacksCarryThem) {
  auto m = SampleManifest("ab12", "payload");
  m.rollback = true;
  m.device_id = "dev-1";
  m.expires_at = 1'800'000'000;
  auto parsed = wire::ParseManifest(wire::SerializeManifest(m));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->device_id, "dev-1");
  EXPECT_EQ(parsed->expires_at, 1'800'000'000);
  // A plain manifest carries neither, byte for byte the same for every device.
  m.rollback = false;
  const auto plain = wire::SerializeManifest(m);
  EXPECT_EQ(plain.find("device_id"), std::string::npos);
  EXPECT_EQ(plain.find("expires_at"), std::string::npos);
  // Hand-written bytes that mix the two are refused.
  for (const std::string& bad :
       {std::string(R"("rollback":true)"), std::string(R"("rollback":false,"device_id":"d","expires_at":5)")}) {
    std::string bytes = plain;
    bytes.replace(bytes.find(R"("rollback":false)"), 16, bad);
    auto r = wire::ParseManifest(bytes);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "invalid_field") << bad;
  }
}

TEST_F(VerifierTest, PayloadSizeAndDigestAreChecked) {
  edgeprune::testing::TempDir dir;
  auto m = SampleManifest(trusted_.key_id, "the payload");
  EXPECT_TRUE(ManifestVerifier::CheckPayload(m, dir.WriteFile("ok", "the payload")).ok());
  EXPECT_EQ(ManifestVerifier::CheckPayload(m, dir.WriteFile("short", "the paylo")).error().code,
            "payload_size_mismatch");
  EXPECT_EQ(ManifestVerifier::CheckPayload(m, dir.WriteFile("evil", "the PAYLOAD")).error().code,
            "payload_digest_mismatch");
  EXPECT_EQ(ManifestVerifier::CheckPayload(m, dir.File("absent")).error().code,
            "payload_unreadable");
  // Different bytes may be fixed by a new fetch (a bounded retry); an unreadable file is I/O.
  EXPECT_EQ(ManifestVerifier::CheckPayload(m, dir.File("short")).error().retry, Retry::kLimited);
  EXPECT_EQ(ManifestVerifier::CheckPayload(m, dir.File("evil")).error().retry, Retry::kLimited);
  EXPECT_EQ(ManifestVerifier::CheckPayload(m, dir.File("absent")).error().retry,
            Retry::kTransient);
}

class VariantStoreTest : public ::testing::Test {
 protected:
  edgeprune::testing::TempDir dir_{"variant-store"};
  Signer signer_;

  wire::VariantManifest Put(VariantStore& store, const std::string& id, std::int64_t version) {
    const std::string payload = "payload of " + id + " v" + std::to_string(version);
    auto m = SampleManifest(signer_.key_id, payload);
    m.variant_id = id;
    m.version = version;
    const auto partial = store.PartialPath(m);
    EXPECT_TRUE(fs::WriteFileAtomic(partial, payload).ok());
    const auto bytes = wire::SerializeManifest(m);
    auto installed = store.Install(m, bytes, signer_.Sign(bytes), partial);
    EXPECT_TRUE(installed.ok()) << installed.error().ToString();
    return m;
  }
  static bool Exists(const std::string& path) { return fs::ReadFile(path).ok(); }
};

TEST_F(VariantStoreTest, KeepsCurrentAndPreviousAndRecordsTheVersion) {
  auto store = VariantStore::Open(dir_.File("variants"), dir_.File("installed.json"));
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  EXPECT_FALSE(store->InstalledVersion().has_value());
  Put(*store, "v-a", 1);
  auto first = store->Load()->current.value();
  Put(*store, "v-b", 2);
  auto second = store->Load()->current.value();
  Put(*store, "v-c", 3);

  // Reopened, as after a restart.
  auto reopened = VariantStore::Open(dir_.File("variants"), dir_.File("installed.json"));
  auto record = reopened->Load();
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->current->variant_id, "v-c");
  EXPECT_EQ(record->previous->variant_id, "v-b");
  EXPECT_EQ(reopened->InstalledVersion(), 3);
  EXPECT_EQ(fs::ReadFile(record->current->payload_path).value(), "payload of v-c v3");
  EXPECT_TRUE(Exists(record->current->manifest_path));
  EXPECT_EQ(fs::ReadFile(record->current->signature_path)->size(), 64u);
  EXPECT_TRUE(Exists(second.payload_path));
  EXPECT_FALSE(Exists(first.payload_path)) << "variants older than the previous one are removed";
  EXPECT_FALSE(Exists(first.manifest_path));

  auto back = reopened->SwapToPrevious();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->variant_id, "v-b");
  EXPECT_EQ(reopened->Load()->previous->variant_id, "v-c");
}

TEST_F(VariantStoreTest, RefusesUnsafeIdsAndCorruptRecords) {
  auto store = VariantStore::Open(dir_.File("variants"), dir_.File("installed.json"));
  ASSERT_TRUE(store.ok());
  auto m = SampleManifest(signer_.key_id, "x");
  m.variant_id = "../../etc/evil";
  auto partial = dir_.WriteFile("p", "x");
  EXPECT_EQ(store->Install(m, "{}", "sig", partial).error().code, "invalid_variant_id");
  EXPECT_EQ(store->Install(m, "{}", "sig", partial).error().retry, Retry::kPermanent);
  EXPECT_EQ(store->SwapToPrevious().error().code, "no_previous_variant");

  dir_.WriteFile("installed.json", "{\"current\": 5}");
  auto corrupt = store->Load();
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, "install_record_corrupt");
  EXPECT_NE(corrupt.error().message.find("installed.json"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::agent
