#include "server/model_worker/worker_client.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "server/model_worker/protocol.hpp"
#include "server/model_worker/worker_process.hpp"

namespace edgeprune::model_worker {
namespace bj = boost::json;
namespace {

// A private directory for one run, removed with everything the worker left in it.
class Scratch {
 public:
  static Result<Scratch> Make(const std::string& root) {
    EP_RETURN_IF_ERROR(fs::EnsureDir(root, 0700));
    Scratch s;
    s.path_ = root + "/w-" + crypto::RandomToken(12);
    EP_RETURN_IF_ERROR(fs::EnsureDir(s.path_, 0700));
    return s;
  }
  Scratch() = default;
  Scratch(Scratch&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  Scratch& operator=(Scratch&&) = delete;
  ~Scratch() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// What the worker leaves for the server must be its own plain file: a symbolic link or a hard
// link could make the server read (and ship) a file the worker could not read itself.
Status OwnRegularFile(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
    return MakeError(ErrorKind::kInternal, "model_worker_protocol",
                     "the model worker's output is not a plain file of its own");
  }
  return Ok();
}

Status CopyInto(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) {
    return MakeError(ErrorKind::kIo, "io_error", "cannot stage the model for a worker: " + ec.message());
  }
  std::filesystem::permissions(to, std::filesystem::perms::owner_read |
                                       std::filesystem::perms::owner_write, ec);
  return Ok();
}

// Whether an error is the model's doing (the same model would fail again) or the server's.
// kCaller: the caller's own hook stopped it (a cancelled job); its error passes through.
enum class Blame { kModel, kServer, kCaller };

struct Outcome {
  std::optional<bj::object> result;
  std::optional<Error> error;
  Blame blame = Blame::kModel;
};

struct Hooks {
  std::function<Status(std::string_view, double)> progress;
  std::function<Status(const std::string& file)> checkpoint;
};

Outcome Run(const WorkerOptions& o, const Scratch& scratch, const WorkerRequest& request,
            std::chrono::seconds timeout, const std::vector<std::string>& read_only,
            const Hooks& hooks, const std::string& what) {
  ProcessSpec spec;
  spec.argv = {o.executable, "model-worker", "--scratch", scratch.path(), "--parent",
               std::to_string(getpid()), "--memory-bytes", std::to_string(o.memory_bytes),
               // CPU seconds across all of the worker's threads.
               "--cpu-seconds", std::to_string(timeout.count() * std::max(1, request.threads) + 5),
               "--file-size-bytes", std::to_string(o.file_size_bytes)};
  for (const auto& p : read_only) {
    spec.argv.push_back("--read-only");
    spec.argv.push_back(p);
  }
  spec.env = {"PATH=/usr/bin:/bin", "LC_ALL=C",
              "OMP_NUM_THREADS=" + std::to_string(std::max(1, request.threads))};
  spec.input = json::Serialize(ToJson(request));
  spec.deadline = std::chrono::steady_clock::now() + timeout;
  spec.log_name = "model worker (" + what + ")";
  Outcome out;
  auto logger = log::Get("model_worker");
  spec.on_event = [&](const bj::object& event) -> Status {
    const auto* kind = json::FindField(event, "event");
    const std::string type = kind && kind->is_string() ? std::string(kind->as_string()) : "";
    if (type == "sandbox") {
      EP_ASSIGN_OR_RETURN(std::string d, json::GetString(event, "describe"));
      logger->debug("{}: confined by {}", what, d);
    } else if (type == "progress" && hooks.progress) {
      EP_ASSIGN_OR_RETURN(std::string phase, json::GetString(event, "phase"));
      EP_ASSIGN_OR_RETURN(double percent, json::GetDouble(event, "percent"));
      return hooks.progress(phase, percent);
    } else if (type == "checkpoint" && hooks.checkpoint) {
      EP_ASSIGN_OR_RETURN(std::string file, json::GetString(event, "file"));
      if (file.find('/') != std::string::npos || file.empty() || file[0] == '.') {
        return MakeError(ErrorKind::kInternal, "model_worker_protocol", "bad checkpoint name");
      }
      return hooks.checkpoint(scratch.File(file));
    } else if (type == "result") {
      EP_ASSIGN_OR_RETURN(out.result, json::GetObject(event, "result"));
    } else if (type == "error") {
      EP_ASSIGN_OR_RETURN(std::string code, json::GetString(event, "code"));
      EP_ASSIGN_OR_RETURN(std::string message, json::GetString(event, "message"));
      auto detail = json::GetOptString(event, "detail");
      if (detail.ok() && *detail && !(*detail)->empty()) {
        logger->warn("{}: {} ({})", what, code, (*detail)->substr(0, 4000));
      }
      const bool server_side = code == "sandbox_failed" || code == "invalid_request";
      out.blame = server_side ? Blame::kServer : Blame::kModel;
      out.error = MakeError(ErrorKind::kInvalidArgument, code, message);
    }
    return Ok();
  };
  auto end = RunProcess(spec);
  if (!end.ok()) {
    out.blame = Blame::kServer;
    out.error = end.error();
    return out;
  }
  const int status = end->wait_status;
  if (end->stopped) {
    out.blame = Blame::kCaller;
    out.error = *end->stopped;
    out.result.reset();
  } else if (end->timed_out) {
    out.result.reset();
    out.error = MakeError(ErrorKind::kInvalidArgument, "model_timeout",
                          what + " did not finish within " + std::to_string(timeout.count()) +
                              " s; the worker running it was stopped");
  } else if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU || WTERMSIG(status) == SIGKILL)) {
    out.result.reset();
    out.error = MakeError(ErrorKind::kInvalidArgument, "model_resource_limit",
                          what + " used more CPU time or memory than a model worker may use");
  } else if (WIFSIGNALED(status)) {
    out.result.reset();
    out.error = MakeError(ErrorKind::kInvalidArgument, "model_crashed",
                          what + " crashed the worker running it (signal " +
                              std::to_string(WTERMSIG(status)) + ")");
  } else if (end->bad_output || (!out.result && !out.error)) {
    out.blame = Blame::kServer;
    out.error = MakeError(ErrorKind::kInternal, "model_worker_failed",
                          "the model worker ended without an answer (exit status " +
                              std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  if (out.error) {
    logger->info("{}: {}", what, out.error->ToString());
  }
  return out;
}

// Upload validation: the model's faults are the client's (400); ours are 503 (try again).
Error ForUpload(const Outcome& o) {
  Error e = *o.error;
  if (o.blame == Blame::kServer) {
    return MakeError(ErrorKind::kUnavailable, "model_worker_unavailable",
                     "the model could not be checked right now; try again");
  }
  e.kind = ErrorKind::kInvalidArgument;
  return e;
}

// Builds: the model's faults fail the job; ours are retried by the queue.
Error ForBuild(const Outcome& o) {
  Error e = *o.error;
  if (o.blame == Blame::kCaller) return e;
  if (o.blame == Blame::kServer) {
    if (e.kind != ErrorKind::kUnavailable && e.kind != ErrorKind::kIo) e.kind = ErrorKind::kUnavailable;
    return e;
  }
  e.kind = ErrorKind::kFailedPrecondition;
  return e;
}

}  // namespace

catalog::ValidateMasterFn ModelWorkerClient::Validator() const {
  const WorkerOptions o = options_;
  return [o](const std::string& path, const std::vector<std::int64_t>& input_shape,
             std::int64_t expected_classes) -> Result<catalog::MasterFacts> {
    auto scratch = Scratch::Make(o.scratch_root);
    if (!scratch.ok()) return ForUpload(Outcome{{}, scratch.error(), Blame::kServer});
    if (auto st = CopyInto(path, scratch->File("model.pt")); !st.ok()) {
      return ForUpload(Outcome{{}, st.error(), Blame::kServer});
    }
    WorkerRequest request;
    request.threads = 1;
    request.validate = ValidateRequest{"model.pt", input_shape, expected_classes};
    Outcome out = Run(o, *scratch, request, o.validate_timeout, {}, {}, "the uploaded model");
    if (out.error) return ForUpload(out);
    auto facts = FactsFromJson(*out.result);
    if (!facts.ok()) return ForUpload(Outcome{{}, facts.error(), Blame::kServer});
    return facts;
  };
}

catalog::BuildVariantFn ModelWorkerClient::Builder(catalog::VariantBuildOptions build) const {
  const WorkerOptions o = options_;
  return [o, build](const catalog::BuildRequest& r) -> Result<catalog::BuildOutcome> {
    EP_ASSIGN_OR_RETURN(Scratch scratch, Scratch::Make(o.scratch_root));
    EP_RETURN_IF_ERROR(CopyInto(r.master_path, scratch.File("master.pt")));
    WorkerRequest request;
    request.threads = static_cast<int>(std::max<std::int64_t>(1, build.threads));
    BuildJobRequest b;
    b.master_file = "master.pt";
    b.output_file = "variant.pt";
    b.input_shape = r.input_shape;
    b.num_classes = r.num_classes;
    b.dataset = r.dataset;
    b.budget = r.budget;
    b.options = build;
    if (r.resume) {
      EP_RETURN_IF_ERROR(fs::WriteFileAtomic(scratch.File("resume.bin"), *r.resume, 0600));
      b.resume_file = "resume.bin";
    }
    request.build = std::move(b);
    std::vector<std::string> read_only;
    if (!build.dataset_dir.empty()) read_only.push_back(build.dataset_dir);
    // An operator's data set: its stored file, read where it is (never copied).
    if (!r.dataset.empty() && r.dataset.front() == '/') read_only.push_back(r.dataset);
    Hooks hooks;
    hooks.progress = [&](std::string_view phase, double percent) -> Status {
      return r.progress ? r.progress(phase, percent) : Ok();
    };
    hooks.checkpoint = [&](const std::string& file) -> Status {
      if (!r.checkpoint) return Ok();
      // Checkpoints are the worker's output: bounded, and only ever handed back to a worker.
      EP_RETURN_IF_ERROR(OwnRegularFile(file));
      EP_ASSIGN_OR_RETURN(std::string bytes, fs::ReadFile(file, o.file_size_bytes));
      std::error_code ec;
      std::filesystem::remove(file, ec);
      if (auto st = r.checkpoint(bytes); !st.ok()) {
        log::Get("model_worker")->warn("checkpoint not saved: {}", st.error().ToString());
      }
      return Ok();
    };
    Outcome out = Run(o, scratch, request, o.build_timeout, read_only, hooks, "the variant build");
    if (out.error) return ForBuild(out);
    auto outcome = OutcomeFromJson(*out.result);
    if (!outcome.ok()) return ForBuild(Outcome{{}, outcome.error(), Blame::kServer});
    if (auto st = OwnRegularFile(scratch.File("variant.pt")); !st.ok()) {
      return ForBuild(Outcome{{}, st.error(), Blame::kModel});
    }
    std::error_code ec;
    std::filesystem::rename(scratch.File("variant.pt"), r.output_path, ec);
    if (ec) {
      return MakeError(ErrorKind::kIo, "io_error", "cannot take the built variant: " + ec.message());
    }
    return outcome;
  };
}

}  // namespace edgeprune::model_worker
