// The real edgeprune-server on PostgreSQL: `token create` and `serve` with store.url pointing at a
// database of the binary's own test server (store_backends.hpp), an operator call that writes,
// and the startup errors of a malformed or unreachable store.url.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/build_paths.hpp"
#include "server/support/serve_fixture.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::server {
namespace {

class ServePostgresTest : public testing::ServeFixture {
 protected:
  // Runs a short edgeprune-server command; returns its exit status.
  int Command(const std::vector<std::string>& args, std::string* out, std::string* err) {
    edgeprune::testing::Process p({.program = edgeprune::testing::ServerBin(),
                                   .args = args,
                                   .env = {},
                                   .working_dir = dir_.path(),
                                   .output_dir = dir_.Subdir("cmd")});
    auto status = p.Wait(std::chrono::seconds(60));
    *out = p.Stdout();
    *err = p.Stderr();
    return status.value_or(-1);
  }

  edgeprune::testing::TestDatabase pg_{store::Dialect::kPostgres};
};

TEST_F(ServePostgresTest, ServesAndWritesToPostgres) {
  ASSERT_TRUE(pg_.error().empty()) << pg_.error();
  std::string secret, err;
  // The token command reads the same configuration as serve (every key but the command).
  std::vector<std::string> token = {"token", "create", "--name", "admin", "--role", "admin"};
  const auto config = ServeArgs({"--set", "store.url=" + pg_.url()});
  token.insert(token.end(), config.begin() + 1, config.end());
  ASSERT_EQ(Command(token, &secret, &err), 0) << err;
  while (!secret.empty() && secret.back() == '\n') secret.pop_back();
  StartServer({"--set", "store.url=" + pg_.url()});
  auto client = Client();
  auto ready = client->Get("/readyz");
  ASSERT_TRUE(ready.ok()) << ready.error().ToString();
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto made = client->Post("/api/v1/enrollment-tokens", "{}", "application/json",
                           {{"Authorization", "Bearer " + secret}});
  ASSERT_TRUE(made.ok()) << made.error().ToString();
  EXPECT_EQ(made->status, 201) << made->body;

  // It is in PostgreSQL, and the data directory holds no SQLite database.
  auto db = pg_.Open(false);
  ASSERT_NE(db, nullptr);
  auto lease = db->Acquire();
  ASSERT_TRUE(lease.ok());
  auto count = (*lease)->Query("count",
                               "SELECT (SELECT count(*) FROM enrollment_tokens), "
                               "(SELECT count(*) FROM audit_log)");
  ASSERT_TRUE(count.ok() && *count->Step());
  EXPECT_EQ(count->Int64(0), 1);
  EXPECT_GE(count->Int64(1), 2);  // token.create, enrollment_token.create
  EXPECT_FALSE(std::filesystem::exists(dir_.File("data/edgeprune.db")));
}

TEST_F(ServePostgresTest, MalformedOrUnreachableStoreUrlsStopStartupWithoutThePassword) {
  const std::string unreachable =
      "postgresql://ep:s3cret-pw@/fleet?host=" + dir_.Subdir("nope") + "&connect_timeout=2";
  for (const std::string& url : {std::string("mysql://ep:s3cret-pw@h/db"), unreachable}) {
    std::string out, err;
    const int status = Command(ServeArgs({"--set", "store.url=" + url}), &out, &err);
    EXPECT_NE(status, 0) << url;
    EXPECT_NE(err.find(url == unreachable ? "database_unavailable" : "store.url"),
              std::string::npos)
        << err;
    EXPECT_EQ((out + err).find("s3cret"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace edgeprune::server
