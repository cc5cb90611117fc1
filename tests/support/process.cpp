#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "temp_dir.hpp"

extern char** environ;

namespace edgeprune::testing {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(5);

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Process::Process(ProcessOptions options) {
  std::string out_dir = options.output_dir;
  if (out_dir.empty()) {
    own_dir_ = std::make_unique<TempDir>("edgeprune-proc");
    out_dir = own_dir_->path();
  }
  stdout_path_ = out_dir + "/stdout.log";
  stderr_path_ = out_dir + "/stderr.log";

  std::vector<std::string> argv_s{options.program};
  argv_s.insert(argv_s.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> env_s;
  for (const auto& [k, v] : env) env_s.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);

  int rc = posix_spawnp(&pid_, options.program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start '" + options.program + "': " + std::strerror(rc));
  }
}

Process::~Process() {
  if (pid_ > 0) Stop();
}

bool Process::Running() {
  if (status_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = DecodeStatus(status);
    // Leave no orphans from the child's group behind.
    ::kill(-pid_, SIGKILL);
    return false;
  }
  return true;
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
  return status_;
}

void Process::Signal(int signo) {
  if (Running()) ::kill(-pid_, signo);
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (!Running()) return status_.value_or(-1);
  ::kill(-pid_, SIGTERM);
  if (auto s = Wait(grace)) return *s;
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = DecodeStatus(status);
  return *status_;
}

std::string Process::Stdout() const { return Slurp(stdout_path_); }
std::string Process::Stderr() const { return Slurp(stderr_path_); }

std::optional<std::vector<std::string>> Process::WaitForMatch(const std::regex& pattern,
                                                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Check for exit first, then read: output written before exit is still seen.
    bool running = Running();
    for (const std::string& text : {Stdout(), Stderr()}) {
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        std::smatch m;
        if (std::regex_search(line, m, pattern)) {
          std::vector<std::string> groups;
          for (const auto& g : m) groups.push_back(g.str());
          return groups;
        }
      }
    }
    if (!running || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<std::string> Process::WaitForLine(const std::string& substring,
                                                std::chrono::milliseconds timeout) {
  std::string escaped;
  for (char c : substring) {
    if (std::strchr("\\^$.|?*+()[]{}", c) != nullptr) escaped += '\\';
    escaped += c;
  }
  auto m = WaitForMatch(std::regex(".*" + escaped + ".*"), timeout);
  if (!m) return std::nullopt;
  return (*m)[0];
}

std::optional<std::uint16_t> Process::WaitForListening(std::chrono::milliseconds timeout) {
  static const std::regex kListening(R"(listening on \S*?:(\d{1,5})\b)");
  auto m = WaitForMatch(kListening, timeout);
  if (!m) return std::nullopt;
  int port = std::stoi((*m)[1]);
  if (port <= 0 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

}  // namespace edgeprune::testing
