// The HTTP layer against untrusted clients (issue 13): unpredictable request ids, routing and
// authentication decided from the header before any body byte is read, per-route body limits,
// connection caps. Real TLS on 127.0.0.1:0, real sockets.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <set>

#include "edgeprune/common/json.hpp"
#include "http/map_authenticator.hpp"
#include "http/server_fixture.hpp"

namespace edgeprune::http {
namespace {

using testing::MapAuthenticator;

class UntrustedTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    auth_ = std::make_shared<MapAuthenticator>();
    auth_->tokens = {{"op-token", Role::kOperator}};
    router_ = std::make_shared<Router>(auth_);
    Add({Verb::get, "/hello", [](const RequestContext&) -> Result<Response> {
           return JsonResponse(boost::json::object{{"hello", "world"}});
         }, Auth::kPublic, ""});
  }

  void Add(Route r) { ASSERT_TRUE(router_->Add(std::move(r)).ok()); }

  std::shared_ptr<MapAuthenticator> auth_;
};

TEST_F(UntrustedTest, RequestIdsAreRandomNotACounter) {
  StartServer();
  auto client = Client();
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto r = client->Get("/hello");
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    const std::string id = r->Header("x-request-id");
    ASSERT_EQ(id.size(), 16u) << id;  // 96 random bits, URL-safe base64
    for (char c : id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 50u);
  // A counter shares a long prefix between neighbours; 96 random bits share 8 chars by chance
  // with probability 2^-48.
  std::size_t longest_common = 0;
  for (auto it = seen.begin(), next = std::next(it); next != seen.end(); ++it, ++next) {
    std::size_t n = 0;
    while (n < it->size() && (*it)[n] == (*next)[n]) ++n;
    longest_common = std::max(longest_common, n);
  }
  EXPECT_LT(longest_common, 8u);
}

}  // namespace
}  // namespace edgeprune::http
