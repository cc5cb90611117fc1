// The fleet's verbs (devices, enroll-tokens, tokens, audit, telemetry) against the real server:
// human tables, -o json as the server sent it, and every exit code.
#include <gtest/gtest.h>

#include "cli_fixture.hpp"

namespace edgeprune::cli_test {
namespace {

namespace bj = boost::json;

TEST_F(CliTest, EnrollTokensAndTokensPrintTablesAndTheServersJson) {
  auto created = Cli({"enroll-tokens", "create", "--max-uses", "3", "--tag", "lab", "--note", "rack 4"});
  ASSERT_EQ(created.exit, 0) << created.err;
  EXPECT_NE(created.out.find("epe_"), std::string::npos) << "its secret is shown once:\n" << created.out;

  auto table = Cli({"enroll-tokens", "ls"});
  ASSERT_EQ(table.exit, 0) << table.err;
  EXPECT_EQ(table.out.rfind("ID", 0), 0u) << table.out;
  EXPECT_NE(table.out.find("rack 4"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("epe_"), std::string::npos) << "a list never shows secrets";

  // -o json is the server's body, byte for byte (plus the newline).
  auto json = Cli({"-o", "json", "enroll-tokens", "ls"});
  ASSERT_EQ(json.exit, 0) << json.err;
  EXPECT_EQ(json.out, RawGet("/api/v1/enrollment-tokens") + "\n");

  EXPECT_EQ(Cli({"enroll-tokens", "revoke", "1"}).exit, 0);
  auto again = Cli({"enroll-tokens", "revoke", "1"});
  EXPECT_EQ(again.exit, 1) << "409 is a failure";
  EXPECT_EQ(again.err.rfind("edgeprune: enrollment_token_revoked: ", 0), 0u)
      << "one line naming the server's code:\n" << again.err;
  EXPECT_EQ(SplitLines(again.err).size(), 1u) << again.err;
  EXPECT_EQ(Cli({"enroll-tokens", "revoke", "99"}).exit, 3) << "unknown id: not found";

  const std::string viewer = NewToken("watcher", "viewer");
  ASSERT_EQ(viewer.rfind("ept_", 0), 0u);
  auto tokens = Cli({"-o", "json", "tokens", "ls"});
  ASSERT_EQ(tokens.exit, 0);
  EXPECT_EQ(tokens.out, RawGet("/api/v1/tokens") + "\n");
  auto as_viewer = Cli({"enroll-tokens", "create"}, {{"EDGEPRUNE_TOKEN", viewer}});
  EXPECT_EQ(as_viewer.exit, 4) << "a viewer may not create enrollment tokens: " << as_viewer.err;
  EXPECT_NE(as_viewer.err.find("insufficient_role"), std::string::npos) << as_viewer.err;
  EXPECT_EQ(Cli({"tokens", "revoke", "watcher"}).exit, 0);
  EXPECT_EQ(Cli({"tokens", "revoke", "nobody"}).exit, 3);

  auto audit = Cli({"audit", "--action", "token.revoke"});
  ASSERT_EQ(audit.exit, 0) << audit.err;
  EXPECT_NE(audit.out.find("token:watcher"), std::string::npos) << audit.out;
  EXPECT_EQ(Cli({"-o", "json", "audit", "--limit", "2"}).json.at("items").as_array().size(), 2u);
}

TEST_F(CliTest, UsageMistakesExitTwo) {
  EXPECT_EQ(Cli({}).exit, 2);
  EXPECT_EQ(Cli({"devices"}).exit, 2) << "a noun needs a verb";
  EXPECT_EQ(Cli({"devices", "show"}).exit, 2) << "missing id";
  EXPECT_EQ(Cli({"devices", "ls", "--bogus"}).exit, 2);
  EXPECT_EQ(Cli({"-o", "yaml", "devices", "ls"}).exit, 2);
  EXPECT_EQ(Cli({"devices", "tag", "dev-1"}).exit, 2) << "no tags and no --none";
  EXPECT_EQ(Cli({"--server", "http://127.0.0.1:1", "devices", "ls"}).exit, 2) << "https only";
  EXPECT_EQ(Cli({"--context", "nope", "devices", "ls"}).exit, 2);
  EXPECT_EQ(Cli({"devices", "ls", "--limit", "9999"}).exit, 1) << "the server's 400 is a failure";
  EXPECT_EQ(Cli({"--help"}).exit, 0);
}

TEST_F(CliTest, DevicesTagCapsTelemetryAndRevoke) {
  const Device d = EnrollDevice("gw-1");
  ASSERT_FALSE(d.id.empty());
  auto ls = Cli({"devices", "ls"});
  ASSERT_EQ(ls.exit, 0) << ls.err;
  EXPECT_NE(ls.out.find(d.id), std::string::npos);
  EXPECT_NE(ls.out.find("gw-1"), std::string::npos);

  auto tagged = Cli({"-o", "json", "devices", "tag", d.id, "cam", "site-a"});
  ASSERT_EQ(tagged.exit, 0) << tagged.err;
  EXPECT_EQ(bj::serialize(tagged.json.at("tags")), R"(["cam","site-a"])");
  auto by_tag = Cli({"-o", "json", "devices", "ls", "--tag", "site-a"});
  ASSERT_EQ(by_tag.json.at("items").as_array().size(), 1u);

  auto capped = Cli({"devices", "caps", d.id, "--latency-slo-ms", "25", "--max-model-bytes", "50000"});
  ASSERT_EQ(capped.exit, 0) << capped.err;
  auto shown = Cli({"-o", "json", "devices", "show", d.id});
  ASSERT_EQ(shown.exit, 0);
  EXPECT_EQ(shown.json.at("caps").at("max_model_bytes").as_int64(), 50000);
  EXPECT_FALSE(shown.json.at("profile").is_null());
  EXPECT_EQ(Cli({"devices", "caps", d.id, "--clear"}).exit, 0);
  EXPECT_EQ(Cli({"devices", "caps", d.id, "--latency-slo-ms", "-3"}).exit, 2) << "nothing valid given";

  auto telemetry = Cli({"-o", "json", "telemetry", d.id});
  ASSERT_EQ(telemetry.exit, 0) << telemetry.err;
  EXPECT_EQ(telemetry.json.at("total_reports").as_int64(), 0);
  EXPECT_TRUE(telemetry.json.at("items").as_array().empty()) << telemetry.out;
  EXPECT_EQ(Cli({"telemetry", d.id}).exit, 0);

  EXPECT_EQ(Cli({"devices", "show", "dev-0000000000000000"}).exit, 3);
  ASSERT_EQ(Cli({"devices", "revoke", d.id}).exit, 0);
  auto revoked = Cli({"devices", "ls", "--status", "revoked"});
  EXPECT_NE(revoked.out.find(d.id), std::string::npos) << revoked.out;
}

}  // namespace
}  // namespace edgeprune::cli_test
