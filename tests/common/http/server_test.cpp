// The real HTTPS server on 127.0.0.1:0 with real TLS, called with the real HttpsClient.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "edgeprune/common/json.hpp"
#include "common/http/map_authenticator.hpp"
#include "common/http/raw_tls_client.hpp"
#include "common/http/server_fixture.hpp"

namespace edgeprune::http {
namespace {

using testing::MapAuthenticator;

std::string ErrorCodeOf(const ClientResponse& r) {
  auto o = json::ParseObject(r.body);
  if (!o.ok() || !o->contains("error")) return "<no error body: " + r.body + ">";
  return std::string((*o)["error"].as_object()["code"].as_string());
}

class HttpServerTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    auth_ = std::make_shared<MapAuthenticator>();
    auth_->tokens = {{"viewer-token", Role::kViewer}, {"admin-token", Role::kAdmin}};
    auth_->devices = {"device-test-1"};
    router_ = std::make_shared<Router>(auth_);
    Add({Verb::get, "/hello", [](const RequestContext& ctx) -> Result<Response> {
           return JsonResponse(boost::json::object{{"hello", "world"}, {"request_id", ctx.request_id}});
         }, Auth::kPublic, ""});
    Add({Verb::post, "/echo", [](const RequestContext& ctx) -> Result<Response> {
           EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(ctx.body));
           return JsonResponse(o);
         }, Auth::kPublic, ""});
    Add({Verb::put, "/api/v1/items/{id}", [](const RequestContext& ctx) -> Result<Response> {
           return JsonResponse(boost::json::object{{"id", *ctx.PathParam("id")},
                                                   {"q", ctx.QueryParam("q").value_or("")},
                                                   {"by", ctx.principal.id}});
         }, Auth::kAdmin, ""});
    Add({Verb::get, "/api/v1/items", [](const RequestContext&) -> Result<Response> {
           return JsonResponse(boost::json::array{});
         }, Auth::kViewer, ""});
    Add({Verb::get, "/agent/v1/whoami", [](const RequestContext& ctx) -> Result<Response> {
           return JsonResponse(boost::json::object{{"device", ctx.principal.id}});
         }, Auth::kDevice, ""});
    ASSERT_TRUE(router_->Add(MetricsRoute(registry_)).ok());
  }
  void Add(Route r) { ASSERT_TRUE(router_->Add(std::move(r)).ok()); }

  std::shared_ptr<MapAuthenticator> auth_;
};

TEST_F(HttpServerTest, AnswersOverTlsWithKeepAliveAndRequestIds) {
  StartServer();
  auto client = Client();
  auto a = client->Get("/hello");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->Header("content-type"), "application/json");
  EXPECT_FALSE(a->Header("x-request-id").empty());
  auto b = client->Get("/hello", {{"X-Request-Id", "trace-42"}});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->Header("x-request-id"), "trace-42");
  EXPECT_NE(b->body.find("trace-42"), std::string::npos);
  EXPECT_EQ(client->connections_opened(), 1u);
}

TEST_F(HttpServerTest, ClientTrustingAnotherCaIsRefused) {
  StartServer();
  auto client = Client(pki_.wrong_ca.cert);
  auto r = client->Get("/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls_handshake_failed") << r.error().ToString();
  // The server is unharmed.
  auto ok = Client()->Get("/hello");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, BodyOverLimitIs413AndTheConnectionStaysUsable) {
  StartServer();
  auto client = Client();
  std::string big(options_.body_limit + 1000, 'x');
  auto r = client->Post("/echo", big);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(ErrorCodeOf(*r), "payload_too_large");
  auto next = client->Post("/echo", R"({"after":"413"})");
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(next->body, R"({"after":"413"})");
  EXPECT_EQ(client->connections_opened(), 1u);  // same connection: the body was drained
}

TEST_F(HttpServerTest, HugeDeclaredBodyIs413WithoutReadingItThenClose) {
  StartServer();
  auto tls = tls::MakeClientContext({pki_.ca_cert(), "", ""});
  ASSERT_TRUE(tls.ok());
  testing::RawTlsClient raw(*tls, port_);
  raw.Write("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000000\r\n\r\n");
  boost::beast::http::response<boost::beast::http::string_body> res;
  ASSERT_FALSE(raw.Read(res));
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_NE(res.body().find("payload_too_large"), std::string::npos);
  auto next = Client()->Get("/hello");
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_EQ(next->status, 200);
}

TEST_F(HttpServerTest, ChunkedBodyOverLimitIs413) {
  StartServer();
  auto tls = tls::MakeClientContext({pki_.ca_cert(), "", ""});
  ASSERT_TRUE(tls.ok());
  testing::RawTlsClient raw(*tls, port_);
  std::string chunk(16 * 1024, 'y');
  std::string request = "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 6; ++i) request += "4000\r\n" + chunk + "\r\n";  // 96 KiB > 64 KiB limit
  request += "0\r\n\r\n";
  // The server stops reading at the limit, answers 413 and closes. On a loaded machine it can do
  // so before this client has written the rest of the body: the write then fails with a broken
  // pipe and the reset may swallow the answer. When the whole request went out, the 413 must come.
  boost::beast::error_code wrote = raw.TryWrite(request);
  boost::beast::http::response<boost::beast::http::string_body> res;
  boost::beast::error_code read = raw.Read(res);
  if (!wrote) {
    ASSERT_FALSE(read) << read.message();
    EXPECT_EQ(res.result_int(), 413u);
  } else {
    EXPECT_TRUE(wrote == boost::asio::error::broken_pipe ||
                wrote == boost::asio::error::connection_reset)
        << wrote.message();
    if (!read) {
      EXPECT_EQ(res.result_int(), 413u);
    }
  }
  auto next = Client()->Get("/hello");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->status, 200);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  StartServer();
  auto r = Client()->Get("/hello", {{"X-Padding", std::string(options_.header_limit + 10, 'p')}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(ErrorCodeOf(*r), "headers_too_large");
}

TEST_F(HttpServerTest, MalformedJsonIs400WithTheErrorBody) {
  StartServer();
  auto r = Client()->Post("/echo", "{\"broken\": tru");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  auto o = json::ParseObject(r->body);
  ASSERT_TRUE(o.ok()) << r->body;
  ASSERT_EQ(o->size(), 1u);
  const auto& err = (*o)["error"].as_object();
  EXPECT_EQ(err.size(), 2u);
  EXPECT_EQ(err.at("code").as_string(), "invalid_json");
  EXPECT_FALSE(err.at("message").as_string().empty());
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  StartServer();
  auto client = Client();
  auto nf = client->Get("/nope");
  ASSERT_TRUE(nf.ok());
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(ErrorCodeOf(*nf), "not_found");
  auto na = client->Send({"DELETE", "/hello", {}, ""});
  ASSERT_TRUE(na.ok());
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(na->Header("allow"), "GET");
  EXPECT_EQ(ErrorCodeOf(*na), "method_not_allowed");
}

TEST_F(HttpServerTest, PathAndQueryParamsAreDecoded) {
  StartServer();
  auto r = Client()->Send({"PUT", "/api/v1/items/gw%2042?q=a%26b+c",
                           {{"Authorization", "Bearer admin-token"}}, ""});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto o = json::ParseObject(r->body);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ((*o)["id"].as_string(), "gw 42");
  EXPECT_EQ((*o)["q"].as_string(), "a&b c");
  EXPECT_EQ((*o)["by"].as_string(), "user-admin-token");
}

TEST_F(HttpServerTest, BearerAuth401And403) {
  StartServer();
  auto client = Client();
  auto none = client->Get("/api/v1/items");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 401);
  EXPECT_FALSE(none->Header("www-authenticate").empty());
  auto bad = client->Get("/api/v1/items", {{"Authorization", "Bearer stolen"}});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 401);
  auto viewer = client->Get("/api/v1/items", {{"Authorization", "Bearer viewer-token"}});
  ASSERT_TRUE(viewer.ok());
  EXPECT_EQ(viewer->status, 200);
  auto forbidden = client->Send({"PUT", "/api/v1/items/x", {{"Authorization", "Bearer viewer-token"}}, ""});
  ASSERT_TRUE(forbidden.ok());
  EXPECT_EQ(forbidden->status, 403);
  EXPECT_EQ(ErrorCodeOf(*forbidden), "insufficient_role");
}

TEST_F(HttpServerTest, DeviceRoutesUseTheClientCertificate) {
  StartServer(tls::ClientCertMode::kOptional);
  auto anonymous = Client()->Get("/agent/v1/whoami");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(ErrorCodeOf(*anonymous), "client_certificate_required");
  auto device = Client("", pki_.client.cert, pki_.client.key)->Get("/agent/v1/whoami");
  ASSERT_TRUE(device.ok()) << device.error().ToString();
  EXPECT_EQ(device->status, 200);
  EXPECT_EQ(device->body, R"({"device":"device-test-1"})");
  // A certificate from a CA the server does not trust never reaches a handler.
  auto rogue = Client("", pki_.wrong_client.cert, pki_.wrong_client.key)->Get("/agent/v1/whoami");
  EXPECT_FALSE(rogue.ok() && rogue->status == 200);
}

TEST_F(HttpServerTest, MetricsCountRequestsByRouteMethodAndStatus) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client->Get("/hello").ok());
  ASSERT_TRUE(client->Get("/hello").ok());
  ASSERT_TRUE(client->Get("/nope").ok());
  auto m = client->Get("/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->Header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(m->body.find(R"(edgeprune_http_requests_total{method="GET",route="/hello",status="200"} 2)"),
            std::string::npos) << m->body;
  EXPECT_NE(m->body.find(R"(edgeprune_http_requests_total{method="GET",route="unmatched",status="404"} 1)"),
            std::string::npos) << m->body;
  EXPECT_NE(m->body.find(R"(edgeprune_http_request_duration_seconds_count{method="GET",route="/hello"} 2)"),
            std::string::npos) << m->body;
}

TEST_F(HttpServerTest, BindFailureNamesTheAddress) {
  StartServer();
  ServerOptions taken = options_;
  taken.port = port_;
  auto ctx = tls::MakeServerContext({pki_.server_cert(), pki_.server_key(), "", tls::ClientCertMode::kNone});
  ASSERT_TRUE(ctx.ok());
  HttpsServer second(taken, *ctx, router_, nullptr);
  auto r = second.Start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "bind_failed");
  EXPECT_NE(r.error().message.find("127.0.0.1:" + std::to_string(port_)), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::http

namespace edgeprune::http {
namespace {

TEST_F(HttpServerTest, ExpectContinueGetsAnInterimResponseBeforeTheBody) {
  StartServer();
  auto tls = tls::MakeClientContext({pki_.ca_cert(), "", ""});
  ASSERT_TRUE(tls.ok());
  testing::RawTlsClient raw(*tls, port_);
  const std::string body = R"({"waited":true})";
  raw.Write("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  boost::beast::http::response<boost::beast::http::string_body> interim;
  ASSERT_FALSE(raw.Read(interim));
  EXPECT_EQ(interim.result_int(), 100u);
  raw.Write(body);
  boost::beast::http::response<boost::beast::http::string_body> res;
  ASSERT_FALSE(raw.Read(res));
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), body);
}

}  // namespace
}  // namespace edgeprune::http
