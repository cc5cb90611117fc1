#include "support/process.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include "support/temp_dir.hpp"

namespace edgeprune::testing {
namespace {

using namespace std::chrono_literals;

TEST(ProcessTest, CapturesOutputAndExitCode) {
  Process p({.program = "sh", .args = {"-c", "echo out; echo err >&2; exit 3"}});
  EXPECT_EQ(p.Wait(10s), 3);
  EXPECT_EQ(p.Stdout(), "out\n");
  EXPECT_EQ(p.Stderr(), "err\n");
  EXPECT_FALSE(p.Running());
}

TEST(ProcessTest, PassesEnvironmentArgsAndWorkingDir) {
  TempDir dir;
  Process p({.program = "sh",
             .args = {"-c", "echo \"$EP_PROBE $1\"; pwd", "sh", "second arg"},
             .env = {{"EP_PROBE", "hello"}},
             .working_dir = dir.path(),
             .output_dir = dir.path()});
  ASSERT_EQ(p.Wait(10s), 0);
  EXPECT_EQ(p.Stdout(), "hello second arg\n" + dir.path() + "\n");
  EXPECT_EQ(p.stdout_path(), dir.File("stdout.log"));
}

TEST(ProcessTest, WaitForListeningParsesPortWhileRunning) {
  Process p({.program = "sh",
             .args = {"-c", "echo starting; echo 'listening on https://127.0.0.1:4321'; "
                            "exec sleep 60"}});
  auto port = p.WaitForListening(10s);
  ASSERT_TRUE(port.has_value()) << p.Stdout();
  EXPECT_EQ(*port, 4321);
  auto line = p.WaitForLine("starting", 10s);
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line, "starting");
  EXPECT_TRUE(p.Running());
  EXPECT_EQ(p.Stop(), 128 + SIGTERM);
}

TEST(ProcessTest, WaitEndsEarlyWhenChildExitsWithoutTheLine) {
  Process p({.program = "sh", .args = {"-c", "echo something else; exit 1"}});
  // The deadline is long; the wait must return because the child exited.
  EXPECT_FALSE(p.WaitForLine("listening on", 60s).has_value());
  EXPECT_EQ(p.Wait(10s), 1);
}

TEST(ProcessTest, StopEscalatesToSigkill) {
  Process p({.program = "sh",
             .args = {"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}});
  ASSERT_TRUE(p.WaitForLine("ready", 10s).has_value());
  EXPECT_EQ(p.Stop(200ms), 128 + SIGKILL);
  EXPECT_FALSE(p.Running());
}

TEST(ProcessTest, MissingProgramThrowsNamingIt) {
  try {
    Process p({.program = "edgeprune-no-such-program"});
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("edgeprune-no-such-program"), std::string::npos);
  }
}

}  // namespace
}  // namespace edgeprune::testing
