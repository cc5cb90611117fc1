#include "edgeprune/common/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

#include "support/temp_dir.hpp"

namespace edgeprune {
namespace {

// Sets environment variables for one test and removes them afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [k, v] : vars) {
      ::setenv(k, v, 1);
      names_.push_back(k);
    }
  }
  ~ScopedEnv() {
    for (const auto& k : names_) ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::string> names_;
};

ConfigSchema Schema() {
  ConfigSchema s;
  s.String("server.listen_host", "127.0.0.1", "address to bind")
      .Int("server.listen_port", 8443, 0, 65535, "port to bind; 0 picks one")
      .Double("pruning.min_accuracy", 0.5, 0.0, 1.0, "accuracy floor")
      .Bool("log.json", false, "structured logs");
  return s;
}

// A distinct prefix keeps the tests independent of the real EDGEPRUNE_* environment.
constexpr const char* kPrefix = "EPCFGTEST";

TEST(ConfigTest, DefaultsWhenNothingGiven) {
  auto c = Config::Load(Schema(), "", {}, kPrefix);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->GetString("server.listen_host"), "127.0.0.1");
  EXPECT_EQ(c->GetInt("server.listen_port"), 8443);
  EXPECT_DOUBLE_EQ(c->GetDouble("pruning.min_accuracy"), 0.5);
  EXPECT_FALSE(c->GetBool("log.json"));
  EXPECT_EQ(c->SourceOf("server.listen_port"), "default");
  EXPECT_EQ(c->SourceOf("no.such.key"), "unknown");
}

TEST(ConfigTest, PrecedenceDefaultsFileEnvFlags) {
  testing::TempDir dir;
  auto toml = dir.WriteFile("c.toml",
                            "[server]\nlisten_host = \"0.0.0.0\"\nlisten_port = 9000\n"
                            "[pruning]\nmin_accuracy = 1\n"
                            "[log]\njson = true\n");
  ScopedEnv env({{"EPCFGTEST_SERVER_LISTEN_PORT", "9100"}, {"EPCFGTEST_LOG_JSON", "no"}});
  auto c = Config::Load(Schema(), toml, {"log.json=on"}, kPrefix);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->GetString("server.listen_host"), "0.0.0.0");
  EXPECT_EQ(c->SourceOf("server.listen_host"), "file");
  EXPECT_EQ(c->GetInt("server.listen_port"), 9100);
  EXPECT_EQ(c->SourceOf("server.listen_port"), "env");
  EXPECT_DOUBLE_EQ(c->GetDouble("pruning.min_accuracy"), 1.0);  // TOML integer accepted as number
  EXPECT_TRUE(c->GetBool("log.json"));
  EXPECT_EQ(c->SourceOf("log.json"), "flag");
}

TEST(ConfigTest, EmptyEnvPrefixIgnoresEnvironment) {
  ScopedEnv env({{"_SERVER_LISTEN_PORT", "1"}});
  auto c = Config::Load(Schema(), "", {}, "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->GetInt("server.listen_port"), 8443);
}

TEST(ConfigTest, AllProblemsReportedAtOnceEachNamingItsKey) {
  testing::TempDir dir;
  auto toml = dir.WriteFile("c.toml",
                            "[server]\nlisten_port = \"high\"\nlisten_hots = \"x\"\n"
                            "[pruning]\nmin_accuracy = 2.5\n");
  ScopedEnv env({{"EPCFGTEST_LOG_JSON", "maybe"}});
  auto c = Config::Load(Schema(), toml, {"server.listen_host", "nope.key=1"}, kPrefix);
  ASSERT_FALSE(c.ok());
  const Error& e = c.error();
  EXPECT_EQ(e.code, "invalid_config");
  EXPECT_EQ(e.kind, ErrorKind::kInvalidArgument);
  const std::string& m = e.message;
  EXPECT_NE(m.find("6 configuration problem(s)"), std::string::npos) << m;
  // The article ("a"/"an") is left free so wording fixes do not break the test.
  EXPECT_NE(m.find("server.listen_port: must be a"), std::string::npos) << m;
  EXPECT_NE(m.find("server.listen_hots: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("pruning.min_accuracy: must be between 0 and 1, got 2.5 (from file)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("log.json: environment EPCFGTEST_LOG_JSON='maybe'"), std::string::npos) << m;
  EXPECT_NE(m.find("'server.listen_host': an override must look like key=value"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("nope.key: unknown key given on the command line"), std::string::npos) << m;
}

TEST(ConfigTest, BadTypesFromFlagsAndRangeFromFlags) {
  auto c = Config::Load(Schema(), "",
                        {"server.listen_port=12x", "pruning.min_accuracy=abc", "log.json=2",
                         "server.listen_port=70000"},
                        kPrefix);
  ASSERT_FALSE(c.ok());
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("server.listen_port: '12x' is not a"), std::string::npos) << m;
  EXPECT_NE(m.find("pruning.min_accuracy: 'abc' is not a number"), std::string::npos) << m;
  EXPECT_NE(m.find("log.json: '2' is not a boolean"), std::string::npos) << m;
  EXPECT_NE(m.find("server.listen_port: must be between 0 and 65535, got 70000 (from flag)"),
            std::string::npos)
      << m;
}

TEST(ConfigTest, MalformedTomlNamesFileAndLine) {
  testing::TempDir dir;
  auto toml = dir.WriteFile("broken.toml", "[server]\nlisten_port = 1\nlisten_host = \n");
  auto c = Config::Load(Schema(), toml, {}, kPrefix);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("broken.toml: not valid TOML at line 3"), std::string::npos)
      << c.error().message;
}

TEST(ConfigTest, MissingTomlFileIsAnError) {
  testing::TempDir dir;
  auto c = Config::Load(Schema(), dir.File("absent.toml"), {}, kPrefix);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("absent.toml"), std::string::npos) << c.error().message;
}

TEST(ConfigTest, CustomCheckAndDescribe) {
  ConfigSchema s = Schema();
  s.Add({"server.mode", ConfigType::kString, ConfigValue(std::string("edge")), "run mode",
         [](const ConfigValue& v) -> std::optional<std::string> {
           const auto& m = std::get<std::string>(v);
           if (m != "edge" && m != "cloud") return "must be edge or cloud, got '" + m + "'";
           return std::nullopt;
         }});
  auto bad = Config::Load(s, "", {"server.mode=moon"}, kPrefix);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("server.mode: must be edge or cloud, got 'moon'"),
            std::string::npos);
  ASSERT_TRUE(Config::Load(s, "", {"server.mode=cloud"}, kPrefix).ok());
  ASSERT_NE(s.Find("server.mode"), nullptr);
  EXPECT_EQ(s.Find("server.nope"), nullptr);
  std::string doc = s.Describe();
  EXPECT_NE(doc.find("| `server.listen_port` | integer | `8443` | port to bind; 0 picks one |"),
            std::string::npos)
      << doc;
  EXPECT_NE(doc.find("| `server.mode` | string | `\"edge\"` | run mode |"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune
