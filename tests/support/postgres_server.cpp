#include "postgres_server.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

extern char** environ;

#include "process.hpp"
#include "temp_dir.hpp"

namespace edgeprune::testing {
namespace {

namespace stdfs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// `pg_config --bindir` (libpq-dev), else Debian's location of PostgreSQL 15.
std::string FindBindir() {
  std::string dir;
  if (FILE* p = ::popen("pg_config --bindir 2>/dev/null", "r")) {
    char line[512];
    if (std::fgets(line, sizeof line, p) != nullptr) dir = line;
    ::pclose(p);
  }
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
  std::error_code ec;
  if (!dir.empty() && stdfs::exists(dir + "/initdb", ec)) return dir;
  return "/usr/lib/postgresql/15/bin";
}

std::mutex g_shared_mu;
std::unique_ptr<PostgresServer> g_shared;

}  // namespace

PostgresServer::PostgresServer(bool durable) : dir_(std::make_unique<TempDir>("edgeprune-pg")) {
  bindir_ = FindBindir();
  std::error_code ec;
  if (!stdfs::exists(bindir_ + "/initdb", ec) || !stdfs::exists(bindir_ + "/pg_ctl", ec)) {
    error_ = "PostgreSQL server binaries not found in " + bindir_ +
             " (install postgresql-15; deploy/bootstrap.sh does)";
    return;
  }
  socket_dir_ = dir_->path();
  data_dir_ = dir_->File("data");
  if (::geteuid() == 0) {
    // initdb and postgres refuse root: hand the directory to nobody and run them as nobody.
    const passwd* pw = ::getpwnam("nobody");
    if (pw == nullptr || ::chown(dir_->path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      error_ = "running as root, and cannot hand " + dir_->path() + " to the user nobody";
      return;
    }
    run_as_ = "nobody";
  }
  std::string out;
  // Trust over the private socket only.
  if (Run("initdb",
          {"-D", data_dir_, "-A", "trust", "-U", "edgeprune", "-E", "UTF8", "--locale=C",
           "--no-sync"},
          &out) != 0) {
    error_ = "initdb failed: " + out;
    return;
  }
  const std::string server_options =
      "-c listen_addresses='' -k " + socket_dir_ +
      (durable ? std::string() : std::string(" -c fsync=off -c full_page_writes=off")) +
      " -c max_connections=200 -c shared_buffers=16MB";
  const std::string log = dir_->File("server.log");
  if (Run("pg_ctl", {"-D", data_dir_, "-l", log, "-w", "-t", "60", "-o", server_options, "start"},
          &out) != 0) {
    error_ = "pg_ctl start failed: " + out + "\nserver log:\n" + ReadFile(log);
    Stop();
    return;
  }
  running_ = true;
  StartWatchdog();
}

PostgresServer::~PostgresServer() { Stop(); }

// A test binary that crashes, is killed or dies of SIGPIPE runs no destructor, and pg_ctl's
// server is no child of it. A watchdog in its own session holds the read end of a pipe whose
// write end only this process holds: when the process ends, however it ends, the read sees
// EOF and the watchdog stops a server still running and removes its directory.
void PostgresServer::StartWatchdog() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  const std::string as_user = run_as_.empty() ? "" : "runuser -u " + run_as_ + " -- ";
  const std::string script = "read ignored; if [ -e '" + data_dir_ + "/postmaster.pid' ]; then " +
                             as_user + "'" + bindir_ + "/pg_ctl' -D '" + data_dir_ +
                             "' -m immediate stop; rm -rf '" + dir_->path() + "'; fi";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  const char* argv[] = {"sh", "-c", script.c_str(), nullptr};
  pid_t pid = -1;
  if (::posix_spawn(&pid, "/bin/sh", &actions, &attr, const_cast<char* const*>(argv), environ) ==
      0) {
    watchdog_fd_ = fds[1];
  } else {
    ::close(fds[1]);
  }
  ::close(fds[0]);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
}

std::string PostgresServer::Url(const std::string& dbname) const {
  return "postgresql://edgeprune@/" + dbname + "?host=" + socket_dir_;
}

int PostgresServer::Run(const std::string& tool, const std::vector<std::string>& args,
                        std::string* output) {
  ProcessOptions options;
  options.working_dir = dir_->path();
  if (!run_as_.empty()) {
    options.program = "runuser";
    options.args = {"-u", run_as_, "--", bindir_ + "/" + tool};
  } else {
    options.program = bindir_ + "/" + tool;
  }
  options.args.insert(options.args.end(), args.begin(), args.end());
  try {
    Process process(options);
    const auto status = process.Wait(std::chrono::seconds(120));
    *output = process.Stdout() + process.Stderr();
    if (!status) {
      process.Stop();
      *output += "\n(" + tool + " timed out)";
      return -1;
    }
    return *status;
  } catch (const std::exception& e) {
    *output = e.what();
    return -1;
  }
}

void PostgresServer::Stop() {
  if (!dir_) return;
  std::error_code ec;
  const std::string pid_file = data_dir_ + "/postmaster.pid";
  if (stdfs::exists(pid_file, ec)) {
    std::string out;
    if (Run("pg_ctl", {"-D", data_dir_, "-m", "immediate", "-w", "-t", "30", "stop"}, &out) != 0) {
      // pg_ctl could not stop it: the pid file's first line is the postmaster's pid.
      std::ifstream in(pid_file);
      pid_t pid = 0;
      if (in >> pid && pid > 1) ::kill(pid, SIGKILL);
    }
  }
  running_ = false;
  dir_.reset();  // removes the data directory and the socket
  if (watchdog_fd_ >= 0) ::close(std::exchange(watchdog_fd_, -1));  // the watchdog finds nothing
}

PostgresServer& PostgresServer::Shared() {
  std::lock_guard<std::mutex> lock(g_shared_mu);
  if (!g_shared) g_shared = std::make_unique<PostgresServer>();
  return *g_shared;
}

void PostgresServer::StopShared() {
  std::lock_guard<std::mutex> lock(g_shared_mu);
  g_shared.reset();
}

}  // namespace edgeprune::testing
