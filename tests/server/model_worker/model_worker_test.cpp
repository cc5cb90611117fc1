// The model worker: its sandbox confines a real process (files, network, processes, signals,
// memory), and the client runs real models in real `edgeprune-server model-worker` processes —
// good ones answer, hostile ones are refused or stopped with a named code, and no message carries
// a server path.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "support/build_paths.hpp"
#include "edgeprune/common/fs.hpp"
#include "server/model_worker/sandbox.hpp"
#include "server/model_worker/worker_client.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::model_worker {
namespace {

std::string Fixture(const std::string& path) {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/" + path;
}

// Runs `probe` in a forked child after ApplySandbox and returns what it wrote, as key=value lines.
std::map<std::string, std::string> InSandbox(const SandboxPolicy& policy,
                                             const std::function<std::string()>& probe) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto report = ApplySandbox(policy);
    std::string out = report.ok() ? "applied=yes\nlandlock=" + std::to_string(report->landlock_abi) +
                                        "\n" + probe()
                                  : "applied=" + report.error().message + "\n";
    (void)!write(fds[1], out.data(), out.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::map<std::string, std::string> result;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) result[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return result;
}

std::string Errno(int rc) { return rc >= 0 ? "ok" : std::string(strerrordesc_np(errno)); }

TEST(ModelWorkerSandbox, ConfinesFilesNetworkProcessesAndSignals) {
  edgeprune::testing::TempDir dir("edgeprune-sandbox");
  const std::string secret = dir.WriteFile("secret.key", "PRIVATE KEY BYTES");
  const std::string data = dir.WriteFile("dataset/train.idx", "data");
  SandboxPolicy policy;
  policy.scratch_dir = dir.Subdir("scratch");
  policy.read_only = {dir.File("dataset")};
  policy.address_space_bytes = std::uint64_t{2} << 30;
  auto r = InSandbox(policy, [&] {
    std::ostringstream o;
    o << "read_secret=" << Errno(open(secret.c_str(), O_RDONLY)) << "\n";
    o << "write_scratch="
      << Errno(open((policy.scratch_dir + "/out.bin").c_str(), O_CREAT | O_WRONLY, 0600)) << "\n";
    o << "read_dataset=" << Errno(open(data.c_str(), O_RDONLY)) << "\n";
    o << "write_dataset=" << Errno(open(data.c_str(), O_WRONLY)) << "\n";
    o << "symlink_out="
      << Errno(symlink(secret.c_str(), (policy.scratch_dir + "/link").c_str())) << "\n";
    o << "tcp_socket=" << Errno(socket(AF_INET, SOCK_STREAM, 0)) << "\n";
    o << "unix_socket=" << Errno(socket(AF_UNIX, SOCK_STREAM, 0)) << "\n";
    o << "fork=" << Errno(fork()) << "\n";  // a child, if one started, exits at once below
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    o << "exec=" << Errno(execv("/bin/true", argv)) << "\n";
    o << "signal_parent=" << Errno(kill(getppid(), 0)) << "\n";
    o << "signal_group=" << Errno(kill(0, 0)) << "\n";
    bool thread_ran = false;
    std::thread([&] { thread_ran = true; }).join();
    o << "thread=" << (thread_ran ? "ok" : "failed") << "\n";
    void* big = std::malloc(std::size_t{4} << 30);
    o << "alloc_4g=" << (big ? "ok" : "refused") << "\n";
    return o.str();
  });
  ASSERT_EQ(r["applied"], "yes");
  EXPECT_EQ(r["write_scratch"], "ok");
  EXPECT_EQ(r["read_dataset"], "ok");
  EXPECT_EQ(r["thread"], "ok");
  EXPECT_EQ(r["tcp_socket"], "Operation not permitted");
  EXPECT_EQ(r["unix_socket"], "Operation not permitted");
  EXPECT_EQ(r["fork"], "Operation not permitted");
  EXPECT_EQ(r["exec"], "Operation not permitted");
  EXPECT_EQ(r["signal_parent"], "Operation not permitted");
  EXPECT_EQ(r["signal_group"], "Operation not permitted");
  EXPECT_EQ(r["alloc_4g"], "refused");
  if (r["landlock"] == "0") {
    GTEST_SKIP() << "this kernel has no Landlock: file confinement not checked";
  }
  EXPECT_EQ(r["read_secret"], "Permission denied");
  EXPECT_EQ(r["write_dataset"], "Permission denied");
  EXPECT_EQ(r["symlink_out"], "Permission denied");
}

class ModelWorkerTest : public ::testing::Test {
 protected:
  WorkerOptions Options() {
    WorkerOptions o;
    o.executable = edgeprune::testing::ServerBin();
    o.scratch_root = dir_.File("sandbox");
    o.memory_bytes = std::uint64_t{3} << 30;
    o.validate_timeout = std::chrono::seconds(20);
    return o;
  }
  Result<catalog::MasterFacts> Validate(const std::string& fixture, WorkerOptions o) {
    return ModelWorkerClient(o).Validator()(Fixture(fixture), {1, 1, 28, 28}, 10);
  }
  void ExpectNoServerPath(const Error& e) {
    EXPECT_EQ(e.message.find(dir_.path()), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("sandbox"), std::string::npos) << e.message;
  }
  void ExpectScratchEmpty() {
    std::error_code ec;
    EXPECT_TRUE(std::filesystem::is_empty(dir_.File("sandbox"), ec)) << "scratch left behind";
  }
  edgeprune::testing::TempDir dir_{"edgeprune-worker"};
};

TEST_F(ModelWorkerTest, ValidatesAGoodModelInAWorker) {
  auto facts = Validate("models/lenet5_scripted.pt", Options());
  ASSERT_TRUE(facts.ok()) << facts.error().ToString();
  EXPECT_EQ(facts->num_classes, 10);
  EXPECT_GT(facts->parameters, 60000);
  EXPECT_GT(facts->macs, 0);
  ExpectScratchEmpty();
}

TEST_F(ModelWorkerTest, RefusesForbiddenOperatorsBeforeRunningThem) {
  for (const char* f : {"read_secret.pt", "write_file.pt", "save_tensor.pt", "hidden_if.pt",
                        "hidden_submodule.pt", "setstate.pt"}) {
    SCOPED_TRACE(f);
    auto r = Validate(std::string("hostile/") + f, Options());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "forbidden_operator") << r.error().message;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
    ExpectNoServerPath(r.error());
  }
  ExpectScratchEmpty();
}

TEST_F(ModelWorkerTest, StopsAModelThatNeverReturnsAtTheDeadline) {
  auto o = Options();
  o.validate_timeout = std::chrono::seconds(3);
  auto r = Validate("hostile/endless_loop.pt", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "model_timeout") << r.error().message;
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  ExpectScratchEmpty();
}

TEST_F(ModelWorkerTest, StopsAModelThatAllocatesBeyondItsLimit) {
  auto r = Validate("hostile/huge_alloc.pt", Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "model_resource_limit") << r.error().message;
  ExpectNoServerPath(r.error());
}

TEST_F(ModelWorkerTest, AModelThatCrashesLibTorchsCompilerCrashesOnlyTheWorker) {
  // Loading this archive segfaults LibTorch 1.13 (an empty subscript in its code); the operator
  // scan reads the code records without compiling them, so the crash happens in the worker.
  auto r = Validate("hostile/compiler_crash.pt", Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "model_crashed") << r.error().message;
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  ExpectNoServerPath(r.error());
  ExpectScratchEmpty();
  // The next model still gets a worker of its own.
  auto good = Validate("models/lenet5_scripted.pt", Options());
  EXPECT_TRUE(good.ok()) << good.error().ToString();
}

TEST_F(ModelWorkerTest, ANonModelIsInvalidWithoutLibTorchText) {
  const std::string junk = dir_.WriteFile("junk.pt", std::string(4096, 'x'));
  auto r = ModelWorkerClient(Options()).Validator()(junk, {1, 1, 28, 28}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "invalid_model");
  ExpectNoServerPath(r.error());
  auto r2 = ModelWorkerClient(Options()).Validator()(Fixture("models/lenet5_scripted.pt"),
                                                      {1, 3, 8, 8}, 10);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, "invalid_model");
  EXPECT_NE(r2.error().message.find("does not run on input of shape [1, 3, 8, 8]"),
            std::string::npos) << r2.error().message;
  // LibTorch's explanation ("Expected ... input") is logged, not returned.
  EXPECT_EQ(r2.error().message.find("Expected"), std::string::npos) << r2.error().message;
}

TEST_F(ModelWorkerTest, AMissingWorkerBinaryIsTheServersProblemNotTheModels) {
  auto o = Options();
  o.executable = dir_.File("no-such-binary");
  auto r = Validate("models/lenet5_scripted.pt", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(r.error().code, "model_worker_unavailable");
}

TEST_F(ModelWorkerTest, BuildsAVariantInAWorkerAndStopsWhenCancelled) {
  catalog::VariantBuildOptions build;
  build.train_limit = 400;
  build.test_limit = 100;
  build.finetune_steps = 5;
  catalog::BuildRequest r;
  r.master_path = Fixture("pruning/convbn_scripted.pt");
  r.input_shape = {1, 1, 28, 28};
  r.num_classes = 10;
  r.dataset = "synthetic:1x28x28:10";
  r.output_path = dir_.File("variant.pt");
  r.budget.max_macs = 1;  // refused by the planner: an error from inside the worker
  auto client = ModelWorkerClient(Options());
  auto unreachable = client.Builder(build)(r);
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().kind, ErrorKind::kFailedPrecondition) << unreachable.error().ToString();

  r.budget.max_macs.reset();
  int progress_calls = 0;
  r.progress = [&](std::string_view, double) -> Status {
    if (++progress_calls == 2) return MakeError(ErrorKind::kConflict, "cancelled", "cancelled");
    return Ok();
  };
  auto cancelled = client.Builder(build)(r);
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.error().code, "cancelled");
  EXPECT_FALSE(std::filesystem::exists(r.output_path));
  ExpectScratchEmpty();
}

}  // namespace
}  // namespace edgeprune::model_worker
