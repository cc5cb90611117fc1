#include "edgeprune/common/https_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdio>
#include <boost/asio/ip/tcp.hpp>

#include "edgeprune/common/tls.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"
#include "support/wait_until.hpp"
#include "test_https_server.hpp"

namespace edgeprune::http {
namespace {

using namespace std::chrono_literals;
using testing::TestHttpsServer;
using testing::TestReply;
using testing::TestRequest;

// Routes: /echo returns method, body and a header; /hang never answers; /close answers and
// then drops the connection; /bye answers with Connection: close; /big returns 4 KiB.
TestReply Route(const TestRequest& req, const std::optional<tls::PeerCertificate>&) {
  if (req.target == "/hang") return TestReply{.hang = true};
  if (req.target == "/close") return TestReply{.body = "closing", .close_after = true};
  if (req.target == "/bye") return TestReply{.body = "bye", .keep_alive = false};
  if (req.target == "/big") return TestReply{.body = std::string(4096, 'b')};
  auto ct = req.headers.find("content-type");
  return TestReply{
      .status = req.target == "/missing" ? 404 : 200,
      .body = req.method + " " + req.target + " " + req.body + " " +
              (ct == req.headers.end() ? "-" : ct->second),
      .headers = {{"X-Trace", "t1"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}};
}

class HttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = testing::MakeTestPki(dir_.path());
    auto server_ctx = tls::MakeServerContext({pki_.server.cert, pki_.server.key, "", {}});
    ASSERT_TRUE(server_ctx.ok()) << server_ctx.error().ToString();
    server_ = std::make_unique<TestHttpsServer>(*server_ctx, Route);
    auto client_ctx = tls::MakeClientContext({pki_.ca.cert, "", ""});
    ASSERT_TRUE(client_ctx.ok()) << client_ctx.error().ToString();
    client_tls_ = *client_ctx;
  }

  ClientOptions Options(std::chrono::milliseconds timeout = 5000ms) {
    return ClientOptions{.host = "127.0.0.1", .port = server_->port(), .tls = client_tls_,
                         .timeout = timeout};
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
  std::unique_ptr<TestHttpsServer> server_;
  std::shared_ptr<boost::asio::ssl::context> client_tls_;
};

TEST_F(HttpsClientTest, GetAndPostRoundTripWithLowerCaseHeaders) {
  HttpsClient client(Options());
  auto get = client.Get("/echo?x=1", {{"Accept", "text/plain"}});
  ASSERT_TRUE(get.ok()) << get.error().ToString();
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->body, "GET /echo?x=1  -");
  EXPECT_EQ(get->Header("X-TRACE"), "t1");
  EXPECT_EQ(get->headers.at("x-trace"), "t1");
  EXPECT_EQ(get->Header("set-cookie"), "a=1, b=2");
  EXPECT_EQ(get->Header("absent"), "");

  auto post = client.Post("/echo", R"({"k":1})");
  ASSERT_TRUE(post.ok()) << post.error().ToString();
  EXPECT_EQ(post->body, R"(POST /echo {"k":1} application/json)");
  auto missing = client.Get("/missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpsClientTest, KeepAliveReusesOneConnection) {
  HttpsClient client(Options());
  for (int i = 0; i < 5; ++i) {
    auto r = client.Get("/echo");
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server_->connections_accepted(), 1u);
  EXPECT_TRUE(client.connected());
}

TEST_F(HttpsClientTest, ReconnectsOnceAfterServerClosedIdleConnection) {
  HttpsClient client(Options());
  ASSERT_TRUE(client.Get("/echo").ok());
  server_->CloseAllConnections();
  auto r = client.Get("/echo");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(client.connections_opened(), 2u);
  EXPECT_EQ(server_->connections_accepted(), 2u);
}

TEST_F(HttpsClientTest, ReconnectsAfterServerDroppedConnectionPastResponse) {
  HttpsClient client(Options());
  auto first = client.Get("/close");
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->body, "closing");
  auto second = client.Get("/echo");
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST_F(HttpsClientTest, ConnectionCloseResponseStartsFreshConnection) {
  HttpsClient client(Options());
  auto bye = client.Get("/bye");
  ASSERT_TRUE(bye.ok()) << bye.error().ToString();
  EXPECT_FALSE(client.connected());
  ASSERT_TRUE(client.Get("/echo").ok());
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST_F(HttpsClientTest, TimeoutWhenServerNeverAnswersAndNoRetry) {
  HttpsClient client(Options(1500ms));
  ASSERT_TRUE(client.Get("/echo").ok());
  auto r = client.Get("/hang");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "timeout");
  EXPECT_EQ(r.error().kind, ErrorKind::kTimeout);
  EXPECT_NE(r.error().message.find("/hang"), std::string::npos);
  // A timed-out request is not retried: the server saw it exactly once.
  EXPECT_TRUE(testing::WaitUntil([&] { return server_->requests_served() >= 2u; }));
  EXPECT_EQ(server_->connections_accepted(), 1u);
  // The client recovers on a new connection.
  ASSERT_TRUE(client.Get("/echo").ok());
  EXPECT_EQ(client.connections_opened(), 2u);
}

TEST_F(HttpsClientTest, BodyLimitRefusesLargeResponse) {
  auto opts = Options();
  opts.body_limit = 1024;
  HttpsClient client(opts);
  auto r = client.Get("/big");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "response_too_large");
  EXPECT_EQ(r.error().kind, ErrorKind::kPayloadTooLarge);
  ASSERT_TRUE(client.Get("/echo").ok());
}

TEST_F(HttpsClientTest, ConnectRefusedIsConnectFailed) {
  // A port that was just free and has no listener.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::uint16_t port = a.local_endpoint().port();
  a.close();
  auto opts = Options();
  opts.port = port;
  HttpsClient client(opts);
  auto r = client.Get("/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "connect_failed");
  EXPECT_NE(r.error().message.find(std::to_string(port)), std::string::npos);
}

TEST_F(HttpsClientTest, PlainTcpPeerFailsHandshake) {
  // A listener that accepts and closes without speaking TLS.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  boost::asio::ip::tcp::socket peer(ioc);
  a.async_accept(peer, [&](boost::system::error_code) { peer.close(); });
  std::thread t([&] { ioc.run(); });
  auto opts = Options();
  opts.port = a.local_endpoint().port();
  HttpsClient client(opts);
  auto r = client.Get("/echo");
  t.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls_handshake_failed");
}

TEST_F(HttpsClientTest, InvalidRequestsChangeNothing) {
  HttpsClient client(Options());
  EXPECT_EQ(client.Send({.method = "FETCH", .target = "/echo"}).error().code, "invalid_request");
  EXPECT_EQ(client.Get("no-slash").error().code, "invalid_request");
  EXPECT_EQ(client.Get("/a b").error().code, "invalid_request");
  EXPECT_EQ(client.Get("/echo", {{"X-Evil", "a\r\nInjected: 1"}}).error().code, "invalid_request");
  EXPECT_EQ(client.Get("/echo", {{"Bad Name", "v"}}).error().code, "invalid_request");
  EXPECT_EQ(server_->connections_accepted(), 0u);
  HttpsClient no_tls(ClientOptions{.host = "127.0.0.1", .port = server_->port()});
  EXPECT_EQ(no_tls.Get("/echo").error().code, "invalid_request");
}

TEST_F(HttpsClientTest, UnresolvableHostIsResolveFailed) {
  auto opts = Options();
  opts.host = "no-such-host.invalid";
  HttpsClient client(opts);
  auto r = client.Get("/echo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "resolve_failed");
  EXPECT_NE(r.error().message.find("no-such-host.invalid"), std::string::npos);
}

TEST_F(HttpsClientTest, HeadResponseHasNoBodyAndKeepsConnection) {
  HttpsClient client(Options());
  auto head = client.Send({.method = "HEAD", .target = "/big"});
  ASSERT_TRUE(head.ok()) << head.error().ToString();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "4096");
  EXPECT_EQ(head->body, "");
  auto after = client.Get("/echo");
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(HttpsClientTest, CallerMayAskToCloseTheConnection) {
  HttpsClient client(Options());
  auto r = client.Get("/echo", {{"Connection", "close"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_FALSE(client.connected());
}

TEST_F(HttpsClientTest, CloseThenReuseReconnects) {
  HttpsClient client(Options());
  ASSERT_TRUE(client.Get("/echo").ok());
  client.Close();
  EXPECT_FALSE(client.connected());
  ASSERT_TRUE(client.Get("/echo").ok());
  EXPECT_EQ(client.connections_opened(), 2u);
}

}  // namespace
}  // namespace edgeprune::http

namespace edgeprune::http {
namespace {

TEST_F(HttpsClientTest, SendFileStreamsTheFileAndReportsEveryPiece) {
  std::string bytes;
  for (int i = 0; i < 300000; ++i) bytes += static_cast<char>('a' + i % 26);
  const std::string path = dir_.path() + "/upload.bin";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  HttpsClient client(Options());
  std::vector<std::uint64_t> seen;
  FileBody body{path, "application/octet-stream",
                [&](std::uint64_t sent, std::uint64_t total) {
                  EXPECT_EQ(total, bytes.size());
                  seen.push_back(sent);
                }};
  auto r = client.SendFile({"POST", "/echo", {}, "ignored"}, body);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->body, "POST /echo " + bytes + " application/octet-stream");
  ASSERT_GT(seen.size(), 1u) << "the body goes out in pieces";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), bytes.size());
  // The connection stays usable for the next request.
  EXPECT_TRUE(client.Get("/echo").ok());
  EXPECT_EQ(client.connections_opened(), 1u);

  auto missing = client.SendFile({"POST", "/echo", {}, ""}, FileBody{dir_.path() + "/none"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "file_unreadable");
}

}  // namespace
}  // namespace edgeprune::http
