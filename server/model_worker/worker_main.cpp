#include "server/model_worker/worker_main.hpp"

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "edgeprune/common/cli.hpp"
#include "edgeprune/common/json.hpp"
#include "server/model_worker/sandbox.hpp"
#include "server/model_worker/worker_tasks.hpp"

namespace edgeprune::model_worker {
namespace {

constexpr std::size_t kMaxRequestBytes = 1 << 20;
constexpr int kExitFailed = 70;

// Writes whole event lines to the event pipe (the only way out of the worker besides stderr).
class Events {
 public:
  explicit Events(int fd) : fd_(fd) {}
  void Send(std::string line) {
    line += '\n';
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const ssize_t n = write(fd_, p, left);
      if (n <= 0) return;  // the server went away; it will reap us
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

 private:
  int fd_;
};

template <typename T>
int Finish(Events& events, const TaskResult<T>& result) {
  if (const auto* e = std::get_if<TaskError>(&result)) {
    events.Send(ErrorEvent(e->code, e->message, e->detail));
    return 0;
  }
  events.Send(ResultEvent(ToJson(std::get<T>(result))));
  return 0;
}

}  // namespace

int RunModelWorkerCommand(int argc, char** argv) {
  // Die with the server: an orphaned worker would keep running a model nobody waits for.
  SandboxPolicy policy;
  long parent = 0;
  CLI::App app{"run model work in a sandbox (started by the server)", "model-worker"};
  app.add_option("--scratch", policy.scratch_dir, "private scratch directory")->required();
  app.add_option("--read-only", policy.read_only, "readable data set path");
  app.add_option("--memory-bytes", policy.address_space_bytes, "address space limit");
  app.add_option("--cpu-seconds", policy.cpu_seconds, "CPU time limit");
  app.add_option("--file-size-bytes", policy.file_size_bytes, "largest file it may write");
  app.add_option("--parent", parent, "the server's process id")->required();
  if (auto code = cli::Parse(app, argc, argv)) return *code;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) return kExitFailed;

  // The event pipe is a private copy of stdout; stdout itself now leads to the log.
  const int event_fd = dup(STDOUT_FILENO);
  if (event_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return kExitFailed;
  Events events(event_fd);
  if (chdir(policy.scratch_dir.c_str()) != 0) {
    events.Send(ErrorEvent("sandbox_failed", "the model worker cannot enter its scratch directory",
                           policy.scratch_dir));
    return kExitFailed;
  }
  auto report = ApplySandbox(policy);
  if (!report.ok()) {
    events.Send(ErrorEvent("sandbox_failed", "the model worker could not confine itself",
                           report.error().message));
    return kExitFailed;
  }
  events.Send(SandboxEvent(report->Describe()));

  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0) return kExitFailed;
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxRequestBytes) return kExitFailed;
  }
  auto object = json::ParseObject(text);
  auto request = object.ok() ? RequestFromJson(*object) : Result<WorkerRequest>(object.error());
  if (!request.ok()) {
    events.Send(ErrorEvent("invalid_request", "the model worker got a bad request",
                           request.error().ToString()));
    return kExitFailed;
  }
  SetThreads(request->threads);
  if (request->validate) return Finish(events, ValidateTask(*request->validate));
  BuildCallbacks callbacks;
  callbacks.progress = [&](std::string_view phase, double percent) {
    events.Send(ProgressEvent(phase, percent));
  };
  callbacks.checkpoint = [&](const std::string& file) { events.Send(CheckpointEvent(file)); };
  return Finish(events, BuildTask(*request->build, callbacks));
}

}  // namespace edgeprune::model_worker
