#pragma once
// A child process for integration tests: started with posix_spawn in its own process group,
// stdin from /dev/null, stdout and stderr captured to files you can read while it runs.
// The destructor stops it (SIGTERM to the group, SIGKILL after a grace period) and reaps it.
//
//   edgeprune::testing::Process server({.program = edgeprune::testing::ServerBin(),
//                                       .args = {"serve", "--config", cfg},
//                                       .env = {{"EDGEPRUNE_LOG_LEVEL", "debug"}}});
//   auto port = server.WaitForListening(std::chrono::seconds(20));
//   ASSERT_TRUE(port) << server.Stderr();
//
// Waiting polls the captured files until a deadline; a wait also ends early when the child
// exits, so a crashed server fails a test at once instead of at the deadline.
// Thread-safety: use a Process from one thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>
#include "support/build_paths.hpp"

namespace edgeprune::testing {

class TempDir;

struct ProcessOptions {
  std::string program{};  // a path, or a bare name looked up on PATH
  std::vector<std::string> args{};  // argv[1..]
  std::vector<std::pair<std::string, std::string>> env{};  // added to / overriding the parent's
  std::string working_dir{};  // empty: the parent's
  std::string output_dir{};   // where stdout.log / stderr.log go; empty: a private temp dir
};

class Process {
 public:
  // Throws std::runtime_error naming the program when it cannot be started.
  explicit Process(ProcessOptions options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // Exit status: the exit code, or 128 + signal number; nullopt when still running at timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  void Signal(int signo);
  // SIGTERM to the process group, SIGKILL after grace; returns the exit status.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  std::string Stdout() const;
  std::string Stderr() const;
  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }

  // First line of stdout or stderr containing `substring`; nullopt on timeout or exit.
  std::optional<std::string> WaitForLine(const std::string& substring,
                                         std::chrono::milliseconds timeout);
  // Like WaitForLine with a regex searched in each line; returns the match groups
  // ([0] = whole match).
  std::optional<std::vector<std::string>> WaitForMatch(const std::regex& pattern,
                                                       std::chrono::milliseconds timeout);
  // Waits for "listening on <anything>:<port>" and returns the port.
  std::optional<std::uint16_t> WaitForListening(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<TempDir> own_dir_;
  std::string stdout_path_, stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

}  // namespace edgeprune::testing
