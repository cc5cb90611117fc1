// The API contract as the real server serves it (GET /api/v1/openapi.json over real TLS: the
// repository's bytes, public, revalidated with its ETag) and as `edgeprune-server routes` lists
// the routes it is checked against (tools/openapi/check_openapi.py).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "support/build_paths.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "server/support/serve_fixture.hpp"

namespace edgeprune::server::testing {
namespace {

namespace bj = boost::json;
using std::chrono::seconds;

const std::string kDocumentPath = edgeprune::testing::SourceDir() + "/server/api/openapi.json";

class OpenApiServed : public ServeFixture {
 protected:
  http::ClientResponse Get(http::HttpsClient& client,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::ClientRequest req;
    req.method = "GET";
    req.target = "/api/v1/openapi.json";
    req.headers = std::move(headers);
    auto r = client.Send(req);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : http::ClientResponse{};
  }
};

TEST_F(OpenApiServed, AnswersTheRepositorysDocumentToAnyoneWithItsDigestAsETag) {
  StartServer();
  auto file = fs::ReadFile(kDocumentPath);
  ASSERT_TRUE(file.ok()) << file.error().ToString();
  auto client = Client();

  auto r = Get(*client);  // no Authorization header: the contract is public
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, *file) << "the served document must be the bytes of " << kDocumentPath;
  EXPECT_NE(r.Header("content-type").find("application/json"), std::string::npos);
  const std::string etag = "\"" + crypto::Sha256Hex(*file) + "\"";
  EXPECT_EQ(r.Header("etag"), etag);
  EXPECT_NE(r.Header("cache-control").find("no-cache"), std::string::npos);
  boost::system::error_code ec;
  auto doc = bj::parse(r.body, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(doc.at("openapi").as_string().subview().substr(0, 4), "3.1.");

  // Revalidation: the same ETag (strong or weak, alone or in a list) → 304 without a body.
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    auto again = Get(*client, {{"If-None-Match", inm}});
    EXPECT_EQ(again.status, 304) << inm;
    EXPECT_TRUE(again.body.empty()) << inm;
    EXPECT_EQ(again.Header("etag"), etag) << inm;
  }
  // Another ETag (a document of another build) gets the whole document.
  auto changed = Get(*client, {{"If-None-Match", "\"" + std::string(64, '0') + "\""}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, *file);
}

// `routes` prints the assembled table as JSON and nothing else: no first admin token of the
// throwaway database it builds, and that database is gone afterwards.
TEST(OpenApiRoutesCommand, PrintsTheServedTableFromAThrowawayDataDir) {
  edgeprune::testing::TempDir dir{"edgeprune-routes"};
  const std::string tmp = dir.Subdir("tmp");
  const std::string configured = dir.File("configured-data");
  edgeprune::testing::Process routes({.program = edgeprune::testing::ServerBin(),
                                      .args = {"routes", "--set", "server.data_dir=" + configured},
                                      .env = {{"TMPDIR", tmp}}});
  ASSERT_EQ(routes.Wait(seconds(120)), 0) << routes.Stderr();
  boost::system::error_code ec;
  auto table = bj::parse(routes.Stdout(), ec);
  ASSERT_FALSE(ec) << "stdout is not JSON: " << routes.Stdout();
  std::map<std::pair<std::string, std::string>, std::string> auth;
  for (const auto& r : table.as_array()) {
    const auto& o = r.as_object();
    auth[{std::string(o.at("method").as_string()), std::string(o.at("path").as_string())}] =
        std::string(o.at("auth").as_string());
    EXPECT_FALSE(o.at("name").as_string().empty());
  }
  EXPECT_EQ(auth.size(), table.as_array().size()) << "a method and path listed twice";
  EXPECT_EQ((auth[{"GET", "/api/v1/openapi.json"}]), "public");
  EXPECT_EQ((auth[{"POST", "/api/v1/tokens"}]), "admin");
  EXPECT_EQ((auth[{"PATCH", "/api/v1/devices/{id}"}]), "operator");
  EXPECT_EQ((auth[{"POST", "/agent/v1/heartbeat"}]), "device");
  EXPECT_EQ((auth[{"GET", "/metrics"}]), "public");
  EXPECT_EQ(routes.Stdout().find("ept_"), std::string::npos) << "a token secret on stdout";
  EXPECT_FALSE(std::filesystem::exists(configured)) << "the configured data dir was used";
  EXPECT_TRUE(std::filesystem::is_empty(tmp)) << "the throwaway data dir was left behind";

  // The configuration decides what is served: with metrics.require_token, /metrics is viewer.
  edgeprune::testing::Process guarded({.program = edgeprune::testing::ServerBin(),
                                       .args = {"routes", "--set", "metrics.require_token=true"},
                                       .env = {{"TMPDIR", tmp}}});
  ASSERT_EQ(guarded.Wait(seconds(120)), 0) << guarded.Stderr();
  EXPECT_NE(guarded.Stdout().find(R"("path":"/metrics","auth":"viewer")"), std::string::npos)
      << guarded.Stdout();
}

}  // namespace
}  // namespace edgeprune::server::testing
