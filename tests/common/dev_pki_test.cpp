// deploy/pki/make-dev-pki.sh output must be usable by the product's own TLS and signing code.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "support/build_paths.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/tls.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"
#include "test_https_server.hpp"

namespace edgeprune {
namespace {

using namespace std::chrono_literals;

const std::string kScript = edgeprune::testing::SourceDir() + "/deploy/pki/make-dev-pki.sh";

int RunScript(const std::vector<std::string>& args, std::string* out = nullptr) {
  testing::Process p({.program = kScript, .args = args});
  auto status = p.Wait(60s);
  if (out) *out = p.Stdout() + p.Stderr();
  return status.value_or(-1);
}

TEST(DevPkiTest, ScriptOutputServesMutualTlsAndSigns) {
  testing::TempDir dir;
  const std::string d = dir.path() + "/pki";
  std::string out;
  ASSERT_EQ(RunScript({d}, &out), 0) << out;
  for (const char* key : {"ca.key", "server.key", "device-ca.key", "signing.key"}) {
    struct stat st {};
    ASSERT_EQ(::stat((d + "/" + key).c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }

  // The server certificate serves TLS that a client trusting ca.pem accepts, and a device
  // certificate issued with the device-ca key is presented and verified.
  auto server_tls = tls::MakeServerContext(
      {d + "/server.pem", d + "/server.key", d + "/device-ca.pem", tls::ClientCertMode::kOptional});
  ASSERT_TRUE(server_tls.ok()) << server_tls.error().ToString();
  testing::TestHttpsServer server(*server_tls, [](const auto&, const auto& peer) {
    return testing::TestReply{.body = peer ? peer->issuer_cn : "anonymous"};
  });
  auto client_tls = tls::MakeClientContext({d + "/ca.pem", "", ""});
  ASSERT_TRUE(client_tls.ok()) << client_tls.error().ToString();
  for (const char* host : {"localhost", "127.0.0.1"}) {
    http::HttpsClient client({.host = host, .port = server.port(), .tls = *client_tls});
    auto r = client.Get("/");
    ASSERT_TRUE(r.ok()) << host << ": " << r.error().ToString();
    EXPECT_EQ(r->body, "anonymous");
  }
  auto device = testing::IssueCertificate(
      {.common_name = "device-7", .server_auth = false, .client_auth = true},
      {d + "/device-ca.pem", d + "/device-ca.key"}, dir.path() + "/device-7");
  auto mtls = tls::MakeClientContext({d + "/ca.pem", device.cert, device.key});
  ASSERT_TRUE(mtls.ok()) << mtls.error().ToString();
  http::HttpsClient device_client({.host = "localhost", .port = server.port(), .tls = *mtls});
  auto r = device_client.Get("/");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->body, "edgeprune dev device CA");

  auto priv = crypto::LoadEd25519PrivatePem(d + "/signing.key");
  auto pub = crypto::LoadEd25519PublicPem(d + "/signing.pub");
  ASSERT_TRUE(priv.ok()) << priv.error().ToString();
  ASSERT_TRUE(pub.ok()) << pub.error().ToString();
  auto sig = crypto::Ed25519Sign(*priv, "manifest");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(crypto::Ed25519Verify(*pub, "manifest", *sig).ok());
}

TEST(DevPkiTest, IdempotentUnlessForced) {
  testing::TempDir dir;
  const std::string d = dir.path() + "/pki";
  ASSERT_EQ(RunScript({d}), 0);
  std::string ca_before = fs::ReadFile(d + "/ca.pem").value();
  std::string out;
  ASSERT_EQ(RunScript({d}, &out), 0);
  EXPECT_NE(out.find("nothing made"), std::string::npos) << out;
  EXPECT_EQ(fs::ReadFile(d + "/ca.pem").value(), ca_before);
  ASSERT_EQ(RunScript({"--force", d}, &out), 0) << out;
  EXPECT_NE(fs::ReadFile(d + "/ca.pem").value(), ca_before);
}

TEST(DevPkiTest, BadArgumentsAreRefused) {
  std::string out;
  EXPECT_EQ(RunScript({}, &out), 2);
  EXPECT_NE(out.find("missing <out-dir>"), std::string::npos) << out;
  EXPECT_EQ(RunScript({"--bogus", "x"}, &out), 2);
  EXPECT_NE(out.find("--bogus"), std::string::npos) << out;
  EXPECT_EQ(RunScript({"--server-name", "bad name!", "x"}, &out), 2);
}

}  // namespace
}  // namespace edgeprune
