#include "server/catalog/signing_keyring.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::catalog {
namespace {

wire::VariantManifest SampleManifest() {
  wire::VariantManifest m;
  m.model_id = "mdl-0123456789abcdef";
  m.variant_id = "var-fedcba9876543210";
  m.version = 3;
  m.payload.sha256 = crypto::Sha256Hex("payload");
  m.payload.size_bytes = 7;
  m.input_shape = {1, 1, 28, 28};
  m.num_classes = 10;
  m.metrics.accuracy = 0.88;
  m.metrics.accuracy_floor = 0.8;
  m.metrics.params = 12345;
  m.metrics.macs = 67890;
  m.budget.max_macs = 100000;
  m.created_at = 1700000000;
  return m;
}

catalog::SigningKeyring NewKeyring() {
  auto pair = crypto::GenerateEd25519();
  EXPECT_TRUE(pair.ok());
  auto keyring = catalog::SigningKeyring::FromPem(pair->private_pem);
  EXPECT_TRUE(keyring.ok());
  return std::move(keyring).value();
}

TEST(SigningKeyringTest, SignsTheExactManifestBytesWithItsKeyId) {
  catalog::SigningKeyring keyring = NewKeyring();
  EXPECT_EQ(keyring.key_id().size(), 16u);
  auto signed_manifest = keyring.Sign(SampleManifest());
  ASSERT_TRUE(signed_manifest.ok()) << signed_manifest.error().ToString();
  EXPECT_EQ(signed_manifest->key_id, keyring.key_id());
  EXPECT_EQ(signed_manifest->signature.size(), 64u);
  EXPECT_EQ(*crypto::Base64Decode(signed_manifest->signature_base64), signed_manifest->signature);

  // The agent's view: verify the received bytes with the public key, then parse them.
  ASSERT_TRUE(crypto::Ed25519Verify(keyring.public_pem(), signed_manifest->manifest_json,
                                    signed_manifest->signature)
                  .ok());
  auto parsed = wire::ParseManifest(signed_manifest->manifest_json);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->key_id, keyring.key_id());
  EXPECT_EQ(parsed->variant_id, "var-fedcba9876543210");
  EXPECT_EQ(parsed->version, 3);

  // One changed byte anywhere in the manifest breaks the signature.
  std::string tampered = signed_manifest->manifest_json;
  tampered[tampered.find("\"version\":3") + 10] = '4';
  Status bad = keyring.Verify(tampered, signed_manifest->signature);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "bad_signature");
  EXPECT_TRUE(keyring.Verify(signed_manifest->manifest_json, signed_manifest->signature).ok());
}

TEST(SigningKeyringTest, AnotherKeyDoesNotVerify) {
  catalog::SigningKeyring a = NewKeyring();
  catalog::SigningKeyring b = NewKeyring();
  EXPECT_NE(a.key_id(), b.key_id());
  auto signed_manifest = a.SignBytes("{\"any\":\"bytes\"}");
  ASSERT_TRUE(signed_manifest.ok());
  EXPECT_FALSE(b.Verify(signed_manifest->manifest_json, signed_manifest->signature).ok());
}

TEST(SigningKeyringTest, LoadsFromFileAndRefusesBadKeysNamingThePath) {
  testing::TempDir dir;
  auto pair = crypto::GenerateEd25519();
  ASSERT_TRUE(pair.ok());
  const std::string key = dir.WriteFile("signing.key", pair->private_pem);
  auto loaded = catalog::SigningKeyring::Load(key);
  ASSERT_TRUE(loaded.ok()) << loaded.error().ToString();
  EXPECT_EQ(loaded->key_id(), *crypto::Ed25519KeyId(pair->public_pem));

  auto missing = catalog::SigningKeyring::Load(dir.File("absent.key"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent.key"), std::string::npos);

  const std::string pub = dir.WriteFile("signing.pub", pair->public_pem);
  auto wrong_kind = catalog::SigningKeyring::Load(pub);
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_EQ(wrong_kind.error().code, "invalid_key");
  EXPECT_NE(wrong_kind.error().message.find("signing.pub"), std::string::npos);

  const std::string junk = dir.WriteFile("junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
  EXPECT_EQ(catalog::SigningKeyring::Load(junk).error().code, "invalid_key");
  EXPECT_FALSE(catalog::SigningKeyring::Load("").ok());
}

TEST(SigningKeyringTest, LoadOrCreateMakesAPrivateKeyOnceAndReusesIt) {
  testing::TempDir dir;
  const std::string key = dir.File("pki/signing.key");
  ASSERT_EQ(::mkdir(dir.File("pki").c_str(), 0700), 0);
  auto first = catalog::SigningKeyring::LoadOrCreate(key);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pub = crypto::LoadEd25519PublicPem(dir.File("pki/signing.pub"));
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*crypto::Ed25519KeyId(*pub), first->key_id());

  auto second = catalog::SigningKeyring::LoadOrCreate(key);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->key_id(), first->key_id());
}

// Replicas sharing a data directory start together: one key is created, and every one of them
// signs with it and publishes its public half.
TEST(SigningKeyringTest, ConcurrentFirstStartsAgreeOnOneKey) {
  testing::TempDir dir;
  const std::string path = dir.File("signing.key");
  constexpr int kStarts = 8;
  std::vector<std::string> ids(kStarts);
  std::vector<std::thread> starts;
  for (int i = 0; i < kStarts; ++i) {
    starts.emplace_back([&, i] {
      auto k = SigningKeyring::LoadOrCreate(path);
      ids[i] = k.ok() ? k->key_id() : "error: " + k.error().ToString();
    });
  }
  for (auto& t : starts) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  auto loaded = SigningKeyring::Load(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->key_id(), ids[0]);
  auto pub = fs::ReadFile(dir.File("signing.pub"));
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, loaded->public_pem());
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 2u) << "no temp file may stay behind";
}

}  // namespace
}  // namespace edgeprune::catalog
