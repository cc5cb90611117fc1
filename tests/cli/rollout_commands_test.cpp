// Rollouts through the CLI: create from flags and from a spec file, list, show, the operator
// actions, and `show --watch` following a rollout until it ends.
#include <gtest/gtest.h>

#include "support/build_paths.hpp"
#include "cli_fixture.hpp"
#include "support/wait_until.hpp"

namespace edgeprune::cli_test {
namespace {

namespace bj = boost::json;
const std::string kMaster = edgeprune::testing::SourceDir() + "/tests/fixtures/models/lenet5_scripted.pt";

TEST_F(CliTest, RolloutsCreateShowActAndWatchUntilTheEnd) {
  const Device a = EnrollDevice("gw-a");
  const Device b = EnrollDevice("gw-b");
  ASSERT_FALSE(a.id.empty());
  ASSERT_FALSE(b.id.empty());
  auto model = Cli({"-o", "json", "models", "upload", kMaster, "--name", "lenet", "--dataset",
                    "synthetic:1x28x28:10", "--input-shape", "1,28,28"});
  ASSERT_EQ(model.exit, 0) << model.err;
  const std::string mdl(model.json.at("id").as_string());

  EXPECT_EQ(Cli({"rollouts", "create", "--model", mdl}).exit, 2) << "no target";
  EXPECT_EQ(Cli({"rollouts", "create", "--model", mdl, "--device", a.id, "--phases", "1,abc"}).exit, 2);
  auto bad_gate = Cli({"rollouts", "create", "--model", mdl, "--device", a.id, "--gate",
                       "no_such_gate:0.1:pause"});
  EXPECT_EQ(bad_gate.exit, 1);
  EXPECT_NE(bad_gate.err.find("invalid_gate"), std::string::npos) << bad_gate.err;

  // Phase 1 holds one device and bakes an hour: the rollout stays running while we act on it.
  auto created = Cli({"-o", "json", "rollouts", "create", "--model", mdl, "--device", a.id, "--device", b.id,
                      "--phases", "1,100%", "--bake", "3600", "--gate", "install_failure_rate:0.5:pause"});
  ASSERT_EQ(created.exit, 0) << created.err;
  const std::string id(created.json.at("id").as_string());
  EXPECT_EQ(created.json.at("phase_counts").as_array().size(), 2u);

  auto table = Cli({"rollouts", "ls"});
  EXPECT_NE(table.out.find(id), std::string::npos) << table.out;
  // The rollout steps every second (updated_at moves), so the JSON is compared by its ids.
  auto listed = Cli({"-o", "json", "rollouts", "ls"});
  ASSERT_EQ(listed.exit, 0) << listed.err;
  EXPECT_EQ(std::string(listed.json.at("items").at(0).at("id").as_string()), id);
  EXPECT_TRUE(listed.json.at("next_cursor").is_null());
  auto shown = Cli({"rollouts", "show", id});
  ASSERT_EQ(shown.exit, 0) << shown.err;
  EXPECT_NE(shown.out.find("install_failure_rate"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find(a.id), std::string::npos) << shown.out;

  auto paused = Cli({"-o", "json", "rollouts", "pause", id});
  ASSERT_EQ(paused.exit, 0) << paused.err;
  EXPECT_EQ(std::string(paused.json.at("state").as_string()), "paused");
  // A paused rollout waits for an operator: the watch says so and returns instead of redrawing.
  auto waiting = Cli({"rollouts", "show", id, "--watch", "--interval", "0.2"});
  EXPECT_EQ(waiting.exit, 1) << waiting.err;
  EXPECT_NE(waiting.err.find("edgeprune: rollout_paused: "), std::string::npos) << waiting.err;
  EXPECT_NE(waiting.err.find("resume, promote or abort it"), std::string::npos) << waiting.err;
  EXPECT_EQ(Cli({"rollouts", "approve", id}).exit, 1) << "409: only an awaiting rollout is approved";
  EXPECT_EQ(Cli({"rollouts", "resume", id}).exit, 0);

  // The watch redraws (plain lines here) until the abort ends the rollout; an aborted rollout is
  // not a success.
  auto watch = StartCli({"rollouts", "show", id, "--watch", "--interval", "0.2"});
  // The same on a terminal (script(1) gives it a pseudo-terminal): it redraws in place.
  edgeprune::testing::Process tty({.program = "script",
                                   .args = {"-qec", edgeprune::testing::CliBin() + " rollouts show " + id +
                                                        " --watch --interval 0.2", "/dev/null"},
                                   .env = {{"EDGEPRUNE_CONFIG", config_path_}}});
  ASSERT_TRUE(watch->WaitForLine("state running", std::chrono::seconds(30))) << watch->Stderr();
  ASSERT_TRUE(tty.WaitForLine("state running", std::chrono::seconds(30))) << tty.Stdout();
  EXPECT_EQ(Cli({"rollouts", "abort", id}).exit, 0);
  ASSERT_TRUE(tty.Wait(std::chrono::seconds(30)).has_value()) << tty.Stdout();
  EXPECT_NE(tty.Stdout().find("\033["), std::string::npos) << "cursor up and clear: " << tty.Stdout();
  EXPECT_NE(tty.Stdout().find("state aborted"), std::string::npos) << tty.Stdout();
  auto code = watch->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "the watch did not end:\n" << watch->Stdout();
  EXPECT_EQ(*code, 1);
  EXPECT_NE(watch->Stdout().find("state aborted"), std::string::npos) << watch->Stdout();
  EXPECT_NE(watch->Stderr().find("edgeprune: rollout_aborted: "), std::string::npos) << watch->Stderr();
  EXPECT_NE(watch->Stdout().find("PHASE  REACH  PENDING"), std::string::npos) << watch->Stdout();

  EXPECT_EQ(Cli({"rollouts", "promote", id}).exit, 1) << "an aborted rollout takes no action";
  EXPECT_EQ(Cli({"rollouts", "show", "rol-nope"}).exit, 3);

  // The same from a spec file, as docs/api.md writes it.
  const std::string spec = dir_.WriteFile(
      "spec.json", bj::serialize(bj::object{{"model", mdl},
                                            {"target", bj::object{{"devices", bj::array{a.id}}}},
                                            {"phases", bj::array{bj::object{{"percent", 100}}}}}));
  auto from_file = Cli({"-o", "json", "rollouts", "create", "-f", spec});
  ASSERT_EQ(from_file.exit, 0) << from_file.err;
  auto aborted = Cli({"rollouts", "abort", std::string(from_file.json.at("id").as_string())});
  EXPECT_EQ(aborted.exit, 0) << aborted.err;
}

}  // namespace
}  // namespace edgeprune::cli_test
