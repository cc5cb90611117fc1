// What goes wrong around the CLI gives one clear line and the right exit code, never a crash and
// never the token: a wrong CA, a revoked token, a server that is down, and a server answering
// garbage (not JSON, truncated, huge, an error that is not ours, the token echoed back).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include "cli_fixture.hpp"
#include "common/test_https_server.hpp"

namespace edgeprune::cli_test {
namespace {

namespace bj = boost::json;
using edgeprune::testing::TestHttpsServer;
using edgeprune::testing::TestReply;
using edgeprune::testing::TestRequest;

// One line, naming the error code, without the token.
::testing::AssertionResult OneClearLine(const CliRun& r, const std::string& code, const std::string& token) {
  const auto lines = SplitLines(r.err);
  if (lines.size() != 1) return ::testing::AssertionFailure() << "not one line:\n" << r.err;
  if (lines[0].rfind("edgeprune: " + code + ": ", 0) != 0) {
    return ::testing::AssertionFailure() << "does not name " << code << ": " << r.err;
  }
  if (!token.empty() && (r.err + r.out).find(token) != std::string::npos) {
    return ::testing::AssertionFailure() << "the token was printed: " << r.err;
  }
  return ::testing::AssertionSuccess();
}

TEST_F(CliTest, WrongCaRevokedTokenAndServerDownEachGiveOneLine) {
  auto wrong_ca = Cli({"--ca", pki_.wrong_ca.cert, "devices", "ls"});
  EXPECT_EQ(wrong_ca.exit, 1);
  EXPECT_TRUE(OneClearLine(wrong_ca, "tls_handshake_failed", admin_token_));
  EXPECT_NE(wrong_ca.err.find("certificate verify failed"), std::string::npos) << wrong_ca.err;
  EXPECT_NE(wrong_ca.err.find(pki_.wrong_ca.cert), std::string::npos) << "names the CA file to check";

  const std::string viewer = NewToken("short-lived", "viewer");
  ASSERT_EQ(Cli({"devices", "ls"}, {{"EDGEPRUNE_TOKEN", viewer}}).exit, 0);
  ASSERT_EQ(Cli({"tokens", "revoke", "short-lived"}).exit, 0);
  auto revoked = Cli({"-v", "devices", "ls"}, {{"EDGEPRUNE_TOKEN", viewer}});
  EXPECT_EQ(revoked.exit, 4);
  EXPECT_NE(revoked.err.find("edgeprune: invalid_token: "), std::string::npos) << revoked.err;
  EXPECT_NE(revoked.err.find("Bearer <token>"), std::string::npos) << "-v shows the request";
  EXPECT_EQ(revoked.err.find(viewer), std::string::npos) << "-v never shows the token:\n" << revoked.err;

  server_->Stop();
  auto down = Cli({"devices", "ls"});
  EXPECT_EQ(down.exit, 1);
  EXPECT_TRUE(OneClearLine(down, "connect_failed", admin_token_));
  EXPECT_NE(down.err.find("cannot reach the server at " + Url()), std::string::npos) << down.err;
}

TEST_F(CliTest, LoginChecksTheTokenAndStoresItPrivately) {
  const std::string token_file = dir_.WriteFile("given.token", admin_token_ + "\n");
  const std::string config = dir_.File("fresh/config.json");
  auto login = Cli({"--config", config, "--context", "lab", "login", "--server", Url(), "--ca",
                    pki_.ca_cert(), "--token-file", token_file});
  ASSERT_EQ(login.exit, 0) << login.err;
  EXPECT_EQ((login.out + login.err).find(admin_token_), std::string::npos) << "login never prints it";
  struct stat st {};
  ASSERT_EQ(::stat(dir_.File("fresh/tokens/lab").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(config.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  auto contexts = Cli({"--config", config, "context", "ls"});
  EXPECT_NE(contexts.out.find("*  lab"), std::string::npos) << contexts.out;
  EXPECT_EQ(contexts.out.find(admin_token_), std::string::npos);
  EXPECT_EQ(Cli({"--config", config, "devices", "ls"}).exit, 0) << "the stored context works";
  EXPECT_EQ(Cli({"--config", config, "context", "use", "nope"}).exit, 3);

  const std::string bad_file = dir_.WriteFile("bad.token", "ept_not-a-real-token\n");
  auto bad = Cli({"--config", dir_.File("other/config.json"), "login", "--server", Url(), "--ca",
                  pki_.ca_cert(), "--token-file", bad_file});
  EXPECT_EQ(bad.exit, 4);
  EXPECT_TRUE(OneClearLine(bad, "invalid_token", "ept_not-a-real-token"));
  EXPECT_NE(::stat(dir_.File("other/tokens/default").c_str(), &st), 0) << "a refused token is not stored";
}

class GarbageServer {
 public:
  explicit GarbageServer(const edgeprune::testing::TestPki& pki, TestHttpsServer::Handler handler)
      : server_(*tls::MakeServerContext({pki.server_cert(), pki.server_key(), "", tls::ClientCertMode::kNone}),
                std::move(handler)) {}
  std::string url() const { return "https://127.0.0.1:" + std::to_string(server_.port()); }

 private:
  TestHttpsServer server_;
};

TEST_F(CliTest, AServerAnsweringGarbageGivesAClearErrorNotACrash) {
  struct Case {
    const char* what;
    TestReply reply;
    const char* code;
  };
  std::string echoed;
  const std::vector<Case> cases = {
      {"not JSON", {200, "<html>hello</html>", {{"Content-Type", "text/html"}}}, "invalid_response"},
      {"truncated JSON", {200, R"({"items": [{"id": "dev-)", {}}, "invalid_response"},
      {"huge", {200, std::string(40u << 20, ' '), {}}, "response_too_large"},
      {"an error that is not ours", {502, "Bad Gateway", {}}, "unexpected_response"},
      {"JSON of the wrong shape", {200, R"([1, 2, 3])", {}}, ""},
  };
  for (const auto& c : cases) {
    GarbageServer garbage(pki_, [&](const TestRequest&, const auto&) { return c.reply; });
    auto r = Cli({"--server", garbage.url(), "--timeout", "5", "devices", "ls"});
    if (std::string(c.code).empty()) {
      EXPECT_EQ(r.exit, 0) << c.what << ": a table of nothing, not a crash\n" << r.err;
      continue;
    }
    EXPECT_EQ(r.exit, 1) << c.what << "\n" << r.err;
    EXPECT_TRUE(OneClearLine(r, c.code, admin_token_)) << c.what;
  }
  // JSON without the state a watch waits for ends the watch instead of waiting forever.
  GarbageServer stateless(pki_, [](const TestRequest&, const auto&) { return TestReply{200, "{}", {}}; });
  for (const std::vector<std::string>& watch : {std::vector<std::string>{"jobs", "watch", "job-1"},
                                                std::vector<std::string>{"rollouts", "show", "rol-1", "--watch"}}) {
    std::vector<std::string> args = {"--server", stateless.url()};
    args.insert(args.end(), watch.begin(), watch.end());
    auto r = Cli(args, {}, std::chrono::seconds(30));
    EXPECT_EQ(r.exit, 1) << watch[0];
    EXPECT_TRUE(OneClearLine(r, "invalid_response", admin_token_)) << watch[0];
  }
  // A server that echoes the request back into its error: the token is redacted.
  GarbageServer echo(pki_, [](const TestRequest& req, const auto&) {
    return TestReply{401, R"({"error": {"code": "bad", "message": "you sent )" +
                              req.headers.at("authorization") + R"("}})", {{"Content-Type", "application/json"}}};
  });
  auto r = Cli({"--server", echo.url(), "devices", "ls"});
  EXPECT_EQ(r.exit, 4);
  EXPECT_TRUE(OneClearLine(r, "bad", admin_token_)) << r.err;
  EXPECT_NE(r.err.find("you sent Bearer <token>"), std::string::npos) << r.err;
  auto verbose = Cli({"--server", echo.url(), "-v", "devices", "ls"});
  EXPECT_EQ(verbose.exit, 4);
  EXPECT_EQ((verbose.out + verbose.err).find(admin_token_), std::string::npos) << verbose.err;
}

}  // namespace
}  // namespace edgeprune::cli_test
