// Router, URL and Range parsing without a network: matching, params, 404/405, auth decisions.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>
#include <memory>
#include <stdexcept>

#include "edgeprune/common/json.hpp"
#include "common/http/file_range.hpp"
#include "common/http/pagination.hpp"
#include "common/http/router.hpp"
#include "common/http/url.hpp"
#include "common/http/map_authenticator.hpp"

namespace edgeprune::http {
namespace {

using testing::MapAuthenticator;

Handler Echo(std::string what) {
  return [what](const RequestContext& ctx) -> Result<Response> {
    boost::json::object o{{"route", what}, {"principal", ctx.principal.id}};
    for (const auto& [k, v] : ctx.path_params) o[k] = v;
    return JsonResponse(o);
  };
}

RequestContext Request(Verb method, std::string target) {
  RequestContext ctx;
  ctx.method = method;
  ctx.target = std::move(target);
  ctx.request_id = "test";
  return ctx;
}

boost::json::object BodyOf(const Response& r) {
  auto o = json::ParseObject(r.body);
  EXPECT_TRUE(o.ok()) << r.body;
  return o.ok() ? *o : boost::json::object{};
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auth_ = std::make_shared<MapAuthenticator>();
    auth_->tokens = {{"v", Role::kViewer}, {"o", Role::kOperator}, {"a", Role::kAdmin}};
    auth_->devices = {"device-7"};
    router_ = std::make_unique<Router>(auth_);
    ASSERT_TRUE(router_->Add({Verb::get, "/api/v1/devices", Echo("list"), Auth::kViewer, ""}).ok());
    ASSERT_TRUE(router_->Add({Verb::get, "/api/v1/devices/{id}", Echo("get"), Auth::kViewer, ""}).ok());
    ASSERT_TRUE(router_->Add({Verb::delete_, "/api/v1/devices/{id}", Echo("delete"), Auth::kAdmin, ""}).ok());
    ASSERT_TRUE(router_->Add({Verb::post, "/api/v1/models/{model}/variants/{variant}", Echo("variant"),
                              Auth::kOperator, ""}).ok());
    ASSERT_TRUE(router_->Add({Verb::get, "/agent/v1/assignment", Echo("device"), Auth::kDevice, ""}).ok());
  }
  std::shared_ptr<MapAuthenticator> auth_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, MatchesPathParamsPercentDecoded) {
  auto ctx = Request(Verb::post, "/api/v1/models/m%201/variants/v%2F2?x=1");
  ctx.headers["authorization"] = "Bearer o";
  auto out = router_->Handle(ctx);
  ASSERT_EQ(out.response.status, HttpStatus::ok) << out.response.body;
  auto body = BodyOf(out.response);
  EXPECT_EQ(body["model"].as_string(), "m 1");
  EXPECT_EQ(body["variant"].as_string(), "v/2");  // %2F stays inside its segment
  EXPECT_EQ(*out.route_name, "/api/v1/models/{model}/variants/{variant}");
  EXPECT_EQ(ctx.query_params.at("x"), "1");
  EXPECT_EQ(ctx.principal.id, "user-o");
}

TEST_F(RouterTest, UnknownPathIs404WithJsonError) {
  auto ctx = Request(Verb::get, "/api/v1/nothing");
  auto out = router_->Handle(ctx);
  EXPECT_EQ(out.response.status, HttpStatus::not_found);
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "not_found");
  EXPECT_EQ(*out.route_name, Router::kUnmatched);
}

TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  auto ctx = Request(Verb::put, "/api/v1/devices/abc");
  auto out = router_->Handle(ctx);
  EXPECT_EQ(out.response.status, HttpStatus::method_not_allowed);
  std::string allow;
  for (const auto& [k, v] : out.response.headers) {
    if (k == "Allow") allow = v;
  }
  EXPECT_EQ(allow, "GET, DELETE");
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "method_not_allowed");
}

TEST_F(RouterTest, MissingTokenIs401WithChallenge) {
  auto ctx = Request(Verb::get, "/api/v1/devices");
  auto out = router_->Handle(ctx);
  EXPECT_EQ(out.response.status, HttpStatus::unauthorized);
  bool challenged = false;
  for (const auto& [k, v] : out.response.headers) challenged |= (k == "WWW-Authenticate");
  EXPECT_TRUE(challenged);
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "missing_credentials");
}

TEST_F(RouterTest, UnknownTokenAndWrongSchemeAre401) {
  auto ctx = Request(Verb::get, "/api/v1/devices");
  ctx.headers["authorization"] = "Bearer nope";
  EXPECT_EQ(router_->Handle(ctx).response.status, HttpStatus::unauthorized);
  ctx.headers["authorization"] = "Basic dTpw";
  EXPECT_EQ(router_->Handle(ctx).response.status, HttpStatus::unauthorized);
}

TEST_F(RouterTest, RolesAreOrdered) {
  auto ctx = Request(Verb::delete_, "/api/v1/devices/d1");
  ctx.headers["authorization"] = "Bearer o";
  auto out = router_->Handle(ctx);
  EXPECT_EQ(out.response.status, HttpStatus::forbidden);
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "insufficient_role");
  ctx.headers["authorization"] = "Bearer a";
  EXPECT_EQ(router_->Handle(ctx).response.status, HttpStatus::ok);
  auto view = Request(Verb::get, "/api/v1/devices/d1");
  view.headers["authorization"] = "Bearer a";  // admin may do what a viewer may
  EXPECT_EQ(router_->Handle(view).response.status, HttpStatus::ok);
}

TEST_F(RouterTest, DeviceRoutesNeedAVerifiedCertificate) {
  auto ctx = Request(Verb::get, "/agent/v1/assignment");
  ctx.headers["authorization"] = "Bearer a";  // a token is not a device identity
  auto out = router_->Handle(ctx);
  EXPECT_EQ(out.response.status, HttpStatus::unauthorized);
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "client_certificate_required");
  tls::PeerCertificate cert;
  cert.subject_cn = "device-7";
  cert.verified = true;
  ctx.peer_certificate = cert;
  out = router_->Handle(ctx);
  EXPECT_EQ(out.response.status, HttpStatus::ok);
  EXPECT_EQ(BodyOf(out.response)["principal"].as_string(), "device-7");
}

TEST(RouterNoAuthenticator, ProtectedRoutesAre503NotOpen) {
  Router router;
  ASSERT_TRUE(router.Add({Verb::get, "/x", Echo("x"), Auth::kViewer, ""}).ok());
  auto ctx = Request(Verb::get, "/x");
  ctx.headers["authorization"] = "Bearer anything";
  EXPECT_EQ(router.Handle(ctx).response.status, HttpStatus::service_unavailable);
}

TEST(RouterAdd, RefusesBadPatternsAndDuplicates) {
  Router router;
  EXPECT_FALSE(router.Add({Verb::get, "nope", Echo("x"), Auth::kPublic, ""}).ok());
  EXPECT_FALSE(router.Add({Verb::get, "/a/{}", Echo("x"), Auth::kPublic, ""}).ok());
  EXPECT_FALSE(router.Add({Verb::get, "/a/x{id}", Echo("x"), Auth::kPublic, ""}).ok());
  EXPECT_FALSE(router.Add({Verb::get, "/a", Handler{}, Auth::kPublic, ""}).ok());
  EXPECT_TRUE(router.Add({Verb::get, "/a/{id}", Echo("x"), Auth::kPublic, ""}).ok());
  auto dup = router.Add({Verb::get, "/a/{id}", Echo("y"), Auth::kPublic, ""});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "duplicate_route");
}

TEST(RouterHandlers, ErrorsAndExceptionsBecomeJsonErrors) {
  Router router;
  ASSERT_TRUE(router.Add({Verb::post, "/json",
                          [](const RequestContext& ctx) -> Result<Response> {
                            EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(ctx.body));
                            return JsonResponse(o);
                          },
                          Auth::kPublic, ""}).ok());
  ASSERT_TRUE(router.Add({Verb::get, "/throw",
                          [](const RequestContext&) -> Result<Response> {
                            throw std::runtime_error("boom");
                          },
                          Auth::kPublic, ""}).ok());
  auto bad = Request(Verb::post, "/json");
  bad.body = "{\"a\": ";
  auto out = router.Handle(bad);
  EXPECT_EQ(out.response.status, HttpStatus::bad_request);
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "invalid_json");
  auto thrown = Request(Verb::get, "/throw");
  out = router.Handle(thrown);
  EXPECT_EQ(out.response.status, HttpStatus::internal_server_error);
  EXPECT_EQ(BodyOf(out.response)["error"].as_object()["code"].as_string(), "internal_error");
}

// Issue 13 item 9: server paths stay in the server's log.
TEST(ErrorMessages, ServerPathsNeverReachTheClient) {
  Router router;
  ASSERT_TRUE(router.Add({Verb::get, "/io",
                          [](const RequestContext&) -> Result<Response> {
                            return MakeError(ErrorKind::kIo, "write_failed",
                                             "writing /srv/edgeprune/data/blobs/.tmp/x: disk full");
                          },
                          Auth::kPublic, ""}).ok());
  ASSERT_TRUE(router.Add({Verb::get, "/bad",
                          [](const RequestContext&) -> Result<Response> {
                            return MakeError(ErrorKind::kInvalidArgument, "invalid_model",
                                             "open file failed: '/srv/data/uploads/upload-1.pt' "
                                             "(see /api/v1/models)");
                          },
                          Auth::kPublic, ""}).ok());
  auto io = Request(Verb::get, "/io");
  auto out = router.Handle(io);
  EXPECT_EQ(out.response.status, HttpStatus::internal_server_error);
  auto err = BodyOf(out.response)["error"].as_object();
  EXPECT_EQ(err["code"].as_string(), "write_failed");
  const std::string io_message(err["message"].as_string());
  EXPECT_EQ(io_message.find("/srv"), std::string::npos) << io_message;
  EXPECT_NE(io_message.find("request id test"), std::string::npos) << io_message;

  auto bad = Request(Verb::get, "/bad");
  out = router.Handle(bad);
  EXPECT_EQ(out.response.status, HttpStatus::bad_request);
  EXPECT_EQ(std::string(BodyOf(out.response)["error"].as_object()["message"].as_string()),
            "open file failed: '<path>' (see /api/v1/models)");
  EXPECT_EQ(RedactPaths("a /b c"), "a /b c") << "one segment is no file path";
  EXPECT_EQ(RedactPaths("/etc/passwd and x/y/z"), "<path> and x/y/z");
}

TEST(StatusMapping, EveryKindHasItsStatus) {
  EXPECT_EQ(StatusFor(ErrorKind::kInvalidArgument), HttpStatus::bad_request);
  EXPECT_EQ(StatusFor(ErrorKind::kUnauthenticated), HttpStatus::unauthorized);
  EXPECT_EQ(StatusFor(ErrorKind::kPermissionDenied), HttpStatus::forbidden);
  EXPECT_EQ(StatusFor(ErrorKind::kNotFound), HttpStatus::not_found);
  EXPECT_EQ(StatusFor(ErrorKind::kConflict), HttpStatus::conflict);
  EXPECT_EQ(StatusFor(ErrorKind::kPayloadTooLarge), HttpStatus::payload_too_large);
  EXPECT_EQ(StatusFor(ErrorKind::kFailedPrecondition), HttpStatus::unprocessable_entity);
  EXPECT_EQ(StatusFor(ErrorKind::kResourceExhausted), HttpStatus::too_many_requests);
  EXPECT_EQ(StatusFor(ErrorKind::kUnavailable), HttpStatus::service_unavailable);
  EXPECT_EQ(StatusFor(ErrorKind::kTimeout), HttpStatus::gateway_timeout);
  EXPECT_EQ(StatusFor(ErrorKind::kInternal), HttpStatus::internal_server_error);
  EXPECT_EQ(ErrorBody("x_y", "A \"quoted\" thing."),
            R"({"error":{"code":"x_y","message":"A \"quoted\" thing."}})");
}

TEST(Url, DecodesAndRejectsBadEscapes) {
  EXPECT_EQ(PercentDecode("a%20b%2fc").value(), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", true).value(), "a b");
  EXPECT_EQ(PercentDecode("a+b", false).value(), "a+b");
  EXPECT_FALSE(PercentDecode("%2").has_value());
  EXPECT_FALSE(PercentDecode("%zz").has_value());
  auto t = ParseTarget("/p/q?limit=10&name=a%26b&flag&limit=20");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->raw_path, "/p/q");
  EXPECT_EQ(t->query.at("limit"), "10");
  EXPECT_EQ(t->query.at("name"), "a&b");
  EXPECT_EQ(t->query.at("flag"), "");
  EXPECT_FALSE(ParseTarget("/p?x=%G0").has_value());
}

TEST(Range, ParsesTheForms) {
  auto r = ParseRange("bytes=0-99", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(r->length, 100u);
  r = ParseRange("bytes=990-", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 990u);
  EXPECT_EQ(r->length, 10u);
  r = ParseRange("bytes=-10", 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 990u);
  r = ParseRange("bytes=-5000", 1000);  // suffix longer than the resource: all of it
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset, 0u);
  EXPECT_EQ(r->length, 1000u);
  r = ParseRange("bytes=900-5000", 1000);  // end past the resource is clamped
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->length, 100u);
}

TEST(Range, RefusesWhatItCannotServe) {
  for (const char* bad : {"bytes=1000-", "bytes=5-2", "items=0-1", "bytes=0-1,5-6", "bytes=x-",
                          "bytes=-0", "bytes="}) {
    auto r = ParseRange(bad, 1000);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, "range_not_satisfiable") << bad;
    }
  }
}

}  // namespace
}  // namespace edgeprune::http

namespace edgeprune::http {
namespace {

TEST(Pagination, LimitDefaultsAndBounds) {
  RequestContext ctx;
  auto page = PageParams(ctx, 50, 500);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->limit, 50);
  EXPECT_FALSE(page->cursor.has_value());
  ctx.query_params = {{"limit", "500"}, {"cursor", "abc"}};
  page = PageParams(ctx, 50, 500);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->limit, 500);
  EXPECT_EQ(*page->cursor, "abc");
  // "1e3" once parsed as 1 (issue 13): only plain decimal digits are a limit.
  for (const char* bad : {"0", "501", "-1", "ten", "", "5x", "1e3", "+5", " 5", "5 ", "0x10"}) {
    ctx.query_params = {{"limit", bad}};
    auto r = PageParams(ctx, 50, 500);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "invalid_parameter");
    EXPECT_NE(r.error().message.find("limit"), std::string::npos);
  }
}

}  // namespace
}  // namespace edgeprune::http
