#include <gtest/gtest.h>

#include <sys/stat.h>

#include "agent/enroll/device_key.hpp"
#include "agent/state/state_dir.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

Identity SampleIdentity() {
  Identity id;
  id.device_id = "dev-0123";
  id.server_url = "https://127.0.0.1:8443";
  id.key_pem = GenerateDeviceKey().value();
  id.certificate_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  id.server_ca_pem = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";
  id.enrolled_at = 1700000000;
  id.not_before = 1700000000;
  id.not_after = 1702592000;
  return id;
}

TEST(StateDir, IdentitySurvivesReopeningTheDirectory) {
  testing::TempDir tmp;
  const std::string root = tmp.File("agent");
  {
    auto dir = StateDir::Open(root);
    ASSERT_TRUE(dir.ok()) << dir.error().ToString();
    EXPECT_FALSE(dir->HasIdentity());
    auto missing = dir->LoadIdentity();
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, "identity_missing");
    ASSERT_TRUE(dir->SaveIdentity(SampleIdentity()).ok());
    ASSERT_TRUE(dir->SaveState({"poll", 1700000100}).ok());
  }
  auto dir = StateDir::Open(root);  // as a restarted agent does
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir->HasIdentity());
  auto id = dir->LoadIdentity();
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  const Identity want = SampleIdentity();
  EXPECT_EQ(id->device_id, want.device_id);
  EXPECT_EQ(id->server_url, want.server_url);
  EXPECT_EQ(id->certificate_pem, want.certificate_pem);
  EXPECT_EQ(id->not_after, want.not_after);
  auto state = dir->LoadState();
  ASSERT_TRUE(state.ok());
  ASSERT_TRUE(state->has_value());
  EXPECT_EQ((*state)->state, "poll");
}

TEST(StateDir, PrivateKeyIsOwnerOnly) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp.File("agent"));
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir->SaveIdentity(SampleIdentity()).ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir->key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir->root().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST(StateDir, RefusesAKeyOthersCanRead) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp.File("agent"));
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir->SaveIdentity(SampleIdentity()).ok());
  ASSERT_EQ(::chmod(dir->key_path().c_str(), 0644), 0);
  auto id = dir->LoadIdentity();
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.error().message.find("device.key"), std::string::npos);
}

TEST(StateDir, CorruptIdentityNamesTheFile) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp.File("agent"));
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir->SaveIdentity(SampleIdentity()).ok());
  tmp.WriteFile("agent/identity/identity.json", "{\"device_id\": 5}");
  auto id = dir->LoadIdentity();
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().code, "identity_corrupt");
  EXPECT_NE(id.error().message.find("identity.json"), std::string::npos);
  EXPECT_NE(id.error().message.find("device_id"), std::string::npos);
}

TEST(StateDir, RenewalKeepsTheKey) {
  testing::TempDir tmp;
  auto dir = StateDir::Open(tmp.File("agent"));
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir->SaveIdentity(SampleIdentity()).ok());
  ASSERT_TRUE(dir->SaveCertificate("NEWCERT", 1, 2).ok());
  auto id = dir->LoadIdentity();
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->certificate_pem, "NEWCERT");
  EXPECT_EQ(id->not_after, 2);
  EXPECT_NE(id->key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
}

TEST(DeviceKey, CsrCarriesTheKeyAndRejectsNonEcKeys) {
  auto key = GenerateDeviceKey();
  ASSERT_TRUE(key.ok());
  EXPECT_NE(key->find("BEGIN PRIVATE KEY"), std::string::npos);
  auto csr = MakeCsr(*key, "pending");
  ASSERT_TRUE(csr.ok()) << csr.error().ToString();
  EXPECT_NE(csr->find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
  EXPECT_EQ(csr->find("PRIVATE KEY"), std::string::npos);
  auto bad = MakeCsr("not a key", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_key");
  EXPECT_NE(*GenerateDeviceKey(), *key) << "every device gets its own key";
}

}  // namespace
}  // namespace edgeprune::agent
