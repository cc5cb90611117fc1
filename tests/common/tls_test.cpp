#include "edgeprune/common/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <functional>

#include "edgeprune/common/https_client.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"
#include "support/wait_until.hpp"
#include "test_https_server.hpp"

namespace edgeprune::tls {
namespace {

using testing::TestHttpsServer;
using testing::TestReply;
using testing::TestRequest;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override { pki_ = testing::MakeTestPki(dir_.path()); }

  std::unique_ptr<TestHttpsServer> StartServer(ClientCertMode mode,
                                               const testing::CertFiles* server = nullptr) {
    const auto& s = server ? *server : pki_.server;
    auto ctx = MakeServerContext({s.cert, s.key, pki_.client_ca.cert, mode});
    EXPECT_TRUE(ctx.ok()) << ctx.error().ToString();
    return std::make_unique<TestHttpsServer>(
        *ctx, [](const TestRequest&, const std::optional<PeerCertificate>& peer) {
          return TestReply{.body = peer ? peer->subject_cn : "anonymous"};
        });
  }

  // GET / against the server, trusting ca_file, optionally presenting a client certificate.
  Result<http::ClientResponse> Call(const TestHttpsServer& server, const std::string& host,
                                    const std::string& ca_file,
                                    const testing::CertFiles* client = nullptr) {
    ClientTlsOptions opts{ca_file, client ? client->cert : "", client ? client->key : ""};
    auto ctx = MakeClientContext(opts);
    if (!ctx.ok()) return ctx.error();
    http::HttpsClient c({.host = host, .port = server.port(), .tls = *ctx,
                         .timeout = std::chrono::milliseconds(5000)});
    return c.Get("/");
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
};

TEST_F(TlsTest, HandshakeSucceedsWithTrustedCaByIpAndName) {
  auto server = StartServer(ClientCertMode::kNone);
  for (const char* host : {"127.0.0.1", "localhost"}) {
    auto r = Call(*server, host, pki_.ca.cert);
    ASSERT_TRUE(r.ok()) << host << ": " << r.error().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "anonymous");
  }
}

TEST_F(TlsTest, ClientTrustingWrongCaIsRefused) {
  auto server = StartServer(ClientCertMode::kNone);
  auto r = Call(*server, "127.0.0.1", pki_.wrong_ca.cert);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls_handshake_failed");
  EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(server->requests_served(), 0u);
}

TEST_F(TlsTest, HostNameAndIpMismatchAreRefused) {
  auto server = StartServer(ClientCertMode::kNone, &pki_.mismatched_server);
  auto by_ip = Call(*server, "127.0.0.1", pki_.ca.cert);
  ASSERT_FALSE(by_ip.ok());
  EXPECT_EQ(by_ip.error().code, "tls_handshake_failed");
  EXPECT_NE(by_ip.error().message.find("mismatch"), std::string::npos) << by_ip.error().message;
  auto by_name = Call(*server, "localhost", pki_.ca.cert);
  ASSERT_FALSE(by_name.ok());
  EXPECT_EQ(by_name.error().code, "tls_handshake_failed");
  EXPECT_NE(by_name.error().message.find("hostname mismatch"), std::string::npos)
      << by_name.error().message;
  EXPECT_EQ(server->requests_served(), 0u);
}

TEST_F(TlsTest, RequiredClientCertAcceptsGoodCertAndReadsIdentity) {
  auto server = StartServer(ClientCertMode::kRequired);
  auto r = Call(*server, "127.0.0.1", pki_.ca.cert, &pki_.client);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->body, "device-test-1");
  auto peer = server->last_peer();
  ASSERT_TRUE(peer.has_value());
  EXPECT_TRUE(peer->verified);
  EXPECT_EQ(peer->issuer_cn, "Test Device CA");
  EXPECT_EQ(peer->fingerprint_sha256.size(), 64u);
  EXPECT_FALSE(peer->serial_hex.empty());
  EXPECT_LT(peer->not_before, peer->not_after);
}

TEST_F(TlsTest, RequiredClientCertRefusesMissingWrongAndExpired) {
  auto server = StartServer(ClientCertMode::kRequired);
  const std::vector<const testing::CertFiles*> clients = {nullptr, &pki_.wrong_client,
                                                           &pki_.expired_client};
  for (const testing::CertFiles* client : clients) {
    auto r = Call(*server, "127.0.0.1", pki_.ca.cert, client);
    ASSERT_FALSE(r.ok()) << (client ? client->cert : "no cert");
    EXPECT_EQ(r.error().code, "tls_handshake_failed") << r.error().ToString();
  }
  EXPECT_EQ(server->requests_served(), 0u);
  // The server counts a failed handshake after sending its alert, so the client may get there
  // first.
  EXPECT_TRUE(testing::WaitUntil([&] { return server->handshakes_failed() == 3u; }))
      << server->handshakes_failed();
}

TEST_F(TlsTest, OptionalClientCertAllowsNoneButChecksPresented) {
  auto server = StartServer(ClientCertMode::kOptional);
  auto anon = Call(*server, "127.0.0.1", pki_.ca.cert);
  ASSERT_TRUE(anon.ok()) << anon.error().ToString();
  EXPECT_EQ(anon->body, "anonymous");
  auto good = Call(*server, "127.0.0.1", pki_.ca.cert, &pki_.client);
  ASSERT_TRUE(good.ok()) << good.error().ToString();
  EXPECT_EQ(good->body, "device-test-1");
  auto rogue = Call(*server, "127.0.0.1", pki_.ca.cert, &pki_.wrong_client);
  ASSERT_FALSE(rogue.ok());
  EXPECT_EQ(rogue.error().code, "tls_handshake_failed");
  auto expired = Call(*server, "127.0.0.1", pki_.ca.cert, &pki_.expired_client);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, "tls_handshake_failed");
  EXPECT_EQ(server->requests_served(), 2u);
}

TEST_F(TlsTest, NoClientCertModeNeverAsksForOne) {
  auto server = StartServer(ClientCertMode::kNone);
  auto r = Call(*server, "127.0.0.1", pki_.ca.cert, &pki_.client);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->body, "anonymous");
}

TEST_F(TlsTest, ServerContextErrorsNameFileAndReason) {
  auto missing = MakeServerContext({dir_.File("absent.pem"), pki_.server.key, "", ClientCertMode::kNone});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "tls_file_missing");
  EXPECT_NE(missing.error().message.find("absent.pem"), std::string::npos);

  std::string junk = dir_.WriteFile("junk.pem", "hello, not a certificate\n");
  auto not_pem = MakeServerContext({junk, pki_.server.key, "", ClientCertMode::kNone});
  ASSERT_FALSE(not_pem.ok());
  EXPECT_EQ(not_pem.error().code, "tls_file_not_pem");
  EXPECT_NE(not_pem.error().message.find("junk.pem"), std::string::npos);

  std::string broken = dir_.WriteFile(
      "broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(MakeServerContext({broken, pki_.server.key, "", ClientCertMode::kNone}).error().code,
            "tls_bad_certificate");

  auto mismatch = MakeServerContext({pki_.server.cert, pki_.client.key, "", ClientCertMode::kNone});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, "tls_key_mismatch");
  EXPECT_NE(mismatch.error().message.find(pki_.client.key), std::string::npos);

  auto no_ca = MakeServerContext({pki_.server.cert, pki_.server.key, "", ClientCertMode::kRequired});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_EQ(no_ca.error().code, "tls_config");
  EXPECT_NE(no_ca.error().message.find("client CA"), std::string::npos);

  auto bad_ca = MakeServerContext({pki_.server.cert, pki_.server.key, junk, ClientCertMode::kOptional});
  ASSERT_FALSE(bad_ca.ok());
  EXPECT_EQ(bad_ca.error().code, "tls_file_not_pem");
}

TEST_F(TlsTest, ClientContextErrors) {
  EXPECT_EQ(MakeClientContext({dir_.File("nope.pem"), "", ""}).error().code, "tls_file_missing");
  auto half = MakeClientContext({pki_.ca.cert, pki_.client.cert, ""});
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().code, "tls_config");
  EXPECT_EQ(MakeClientContext({pki_.ca.cert, pki_.client.cert, pki_.server.key}).error().code,
            "tls_key_mismatch");
  EXPECT_TRUE(MakeClientContext({pki_.ca.cert, pki_.client.cert, pki_.client.key}).ok());
}

TEST_F(TlsTest, PolicyRefusesOldProtocolsAndNonAeadSuites) {
  auto server = StartServer(ClientCertMode::kNone);
  auto call_with = [&](const std::function<void(SSL_CTX*)>& tweak) {
    auto ctx = MakeClientContext({pki_.ca.cert, "", ""});
    EXPECT_TRUE(ctx.ok());
    tweak((*ctx)->native_handle());
    http::HttpsClient c({.host = "127.0.0.1", .port = server->port(), .tls = *ctx});
    return c.Get("/");
  };
  // TLS 1.1 is below the floor (OpenSSL may also refuse it on the client side: either way no
  // connection is made).
  auto tls11 = call_with([](SSL_CTX* c) {
    SSL_CTX_set_min_proto_version(c, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION);
  });
  ASSERT_FALSE(tls11.ok());
  EXPECT_EQ(tls11.error().code, "tls_handshake_failed");
  // TLS 1.2 with only a CBC suite offered: refused.
  auto cbc = call_with([](SSL_CTX* c) {
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-AES128-SHA");
  });
  ASSERT_FALSE(cbc.ok());
  EXPECT_EQ(cbc.error().code, "tls_handshake_failed");
  // TLS 1.2 with an ECDHE + GCM suite: accepted.
  auto gcm = call_with([](SSL_CTX* c) {
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-AES128-GCM-SHA256");
  });
  ASSERT_TRUE(gcm.ok()) << gcm.error().ToString();
  EXPECT_EQ(server->requests_served(), 1u);

  auto ctx = MakeServerContext({pki_.server.cert, pki_.server.key, "", ClientCertMode::kNone});
  ASSERT_TRUE(ctx.ok());
  uint64_t opts = SSL_CTX_get_options((*ctx)->native_handle());
  EXPECT_TRUE(opts & SSL_OP_NO_COMPRESSION);
  EXPECT_TRUE(opts & SSL_OP_NO_RENEGOTIATION);
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*ctx)->native_handle()), TLS1_2_VERSION);
}

TEST_F(TlsTest, CertificateInPlaceOfKeyIsBadKey) {
  auto r = MakeServerContext({pki_.server.cert, pki_.server.cert, "", ClientCertMode::kNone});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls_bad_key");
  EXPECT_NE(r.error().message.find(pki_.server.cert), std::string::npos);
}

TEST_F(TlsTest, PeerCertificateOfNullIsEmpty) {
  EXPECT_FALSE(PeerCertificateOf(nullptr).has_value());
  EXPECT_EQ(VerifyFailureOf(nullptr), "");
}

}  // namespace
}  // namespace edgeprune::tls
