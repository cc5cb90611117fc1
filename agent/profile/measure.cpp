#include "agent/profile/measure.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "agent/profile/hardware.hpp"
#include "agent/runtime/backend.hpp"
#include "edgeprune/common/json.hpp"

extern char** environ;

namespace edgeprune::agent {
namespace {

struct ChildOutput {
  int status = 0;  // waitpid status
  bool timed_out = false;  // killed with SIGKILL after the timeout
  std::string out, err;
};

// Runs argv[0] with argv, collecting stdout and stderr until it exits; kills it when it has
// not closed its output within `timeout`.
Result<ChildOutput> RunChild(const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout) {
  auto fail = [&](const std::string& what) {
    return MakeError(ErrorKind::kInternal, "microbench_failed",
                     "cannot run " + args[0] + " microbench: " + what + ": " +
                         std::strerror(errno));
  };
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail("pipe");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return fail("pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The daemon blocks SIGINT/SIGTERM for its signal thread; the child must not inherit that.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0].c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    errno = rc;
    return fail("spawn");
  }
  ChildOutput result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (open_fds > 0) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      result.timed_out = true;
      break;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  while (::waitpid(pid, &result.status, 0) < 0) {
    if (errno != EINTR) return fail("waitpid");
  }
  return result;
}

std::string LastLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

}  // namespace

boost::json::object ToJson(const MicrobenchReport& report) {
  boost::json::object o;
  o["torch_version"] = report.torch_version;
  o["bench"] = wire::ToJson(report.bench);
  return o;
}

Result<MicrobenchReport> MicrobenchReportFromJson(const std::string& text) {
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(text));
  MicrobenchReport r;
  EP_ASSIGN_OR_RETURN(r.torch_version, json::GetString(o, "torch_version"));
  EP_ASSIGN_OR_RETURN(auto bench, json::GetObject(o, "bench"));
  EP_ASSIGN_OR_RETURN(r.bench, wire::MicrobenchFromJson(bench));
  return r;
}

Result<MicrobenchReport> RunMicrobenchHere(const MeasureOptions& o) {
  EP_ASSIGN_OR_RETURN(RuntimeBackend * backend, LoadRuntimeBackend(o.backend_path));
  MicrobenchReport r;
  r.torch_version = backend->TorchVersion();
  EP_ASSIGN_OR_RETURN(r.bench,
                      backend->RunMicrobench({.threads = o.bench_threads, .total_ms = o.bench_ms}));
  return r;
}

Result<MicrobenchReport> RunMicrobenchChild(const MeasureOptions& o) {
  std::string self = o.agent_bin;
  if (self.empty()) {
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    self = n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : "/proc/self/exe";
  }
  std::vector<std::string> args = {self,
                                   "microbench", "--json",
                                   "--threads", std::to_string(o.bench_threads),
                                   "--ms", std::to_string(o.bench_ms)};
  if (!o.backend_path.empty()) {
    args.push_back("--module");
    args.push_back(o.backend_path);
  }
  // The benchmarks take about bench_ms; loading LibTorch a few seconds more.
  const auto timeout = std::chrono::milliseconds(o.bench_ms) + std::chrono::seconds(120);
  EP_ASSIGN_OR_RETURN(ChildOutput child, RunChild(args, timeout));
  const std::string command = args[0] + " microbench";
  if (child.timed_out) {
    return MakeError(ErrorKind::kInternal, "microbench_failed",
                     command + " did not finish within " +
                         std::to_string(timeout.count() / 1000) + " s and was killed");
  }
  if (!WIFEXITED(child.status) || WEXITSTATUS(child.status) != 0) {
    const std::string how = WIFEXITED(child.status)
                                ? "exited with status " + std::to_string(WEXITSTATUS(child.status))
                                : "was killed by signal " + std::to_string(WTERMSIG(child.status));
    return MakeError(ErrorKind::kInternal, "microbench_failed",
                     command + " " + how + ": " + LastLine(child.err));
  }
  auto report = MicrobenchReportFromJson(child.out);
  if (!report.ok()) {
    return MakeError(ErrorKind::kInternal, "microbench_failed",
                     command + " printed no microbench report (" + report.error().ToString() + ")");
  }
  return report;
}

Result<wire::DeviceProfile> MeasureProfile(const MeasureOptions& o) {
  EP_ASSIGN_OR_RETURN(HostFacts facts, ReadHostFacts(o.data_dir));
  EP_ASSIGN_OR_RETURN(MicrobenchReport bench, RunMicrobenchChild(o));
  wire::DeviceProfile p;
  p.arch = facts.arch;
  p.cpu_model = facts.cpu.model;
  p.cores = facts.cpu.logical_cpus;
  p.simd_flags = facts.cpu.simd_flags;
  p.ram_total_bytes = facts.mem.total_bytes;
  p.ram_available_bytes = facts.mem.available_bytes;
  p.disk_free_bytes = facts.disk_free_bytes;
  p.os = facts.os;
  p.torch_version = bench.torch_version;
  p.agent_version = kAgentVersion;
  p.bench = bench.bench;
  p.caps = o.caps;
  p.measured_at = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  // What we send must pass the server's validation; check here so a bad reading says so locally.
  auto check = wire::ProfileFromJson(wire::ToJson(p));
  if (!check.ok()) return check.error().WithContext("measured profile");
  return p;
}

std::int64_t SelfRssBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages_total = 0, pages_resident = 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<std::int64_t>(pages_resident) * ::sysconf(_SC_PAGESIZE);
}

}  // namespace edgeprune::agent
