#include "server/model_worker/worker_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::model_worker {
namespace {

constexpr std::size_t kMaxLine = 1 << 20;
constexpr int kMaxLoggedLines = 200;

struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

Error SpawnError(const std::string& what) {
  return MakeError(ErrorKind::kUnavailable, "model_worker_unavailable",
                   "cannot start a model worker: " + what + ": " + std::strerror(errno));
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Splits what arrived into lines; returns false when a line grows past kMaxLine.
template <typename F>
bool TakeLines(std::string& buffer, F&& on_line) {
  std::size_t start = 0;
  for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n', start)) {
    on_line(std::string_view(buffer).substr(start, nl - start));
    start = nl + 1;
  }
  buffer.erase(0, start);
  return buffer.size() <= kMaxLine;
}

std::string Printable(std::string_view line) {
  std::string out;
  for (char c : line.substr(0, 2000)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace

Result<ProcessEnd> RunProcess(const ProcessSpec& spec) {
  // A worker that dies before reading its request must not kill the server with SIGPIPE.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { signal(SIGPIPE, SIG_IGN); });

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return SpawnError("pipe");
  Fd in_r{in[0]}, in_w{in[1]};
  if (pipe2(out, O_CLOEXEC) != 0) return SpawnError("pipe");
  Fd out_r{out[0]}, out_w{out[1]};
  if (pipe2(err, O_CLOEXEC) != 0) return SpawnError("pipe");
  Fd err_r{err[0]}, err_w{err[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, STDERR_FILENO);
  // Whatever the server holds open (listening socket, database, keys) stays behind.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
  auto argv = CStrings(spec.argv);
  auto envp = CStrings(spec.env);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return SpawnError("posix_spawn");
  }
  in_r.Close();
  out_w.Close();
  err_w.Close();
  fcntl(in_w.fd, F_SETFL, O_NONBLOCK);

  auto logger = log::Get("model_worker");
  ProcessEnd end;
  std::size_t written = 0;
  std::string events, stderr_text;
  int logged = 0;
  bool killed = false;
  auto kill_child = [&] {
    if (!killed) kill(pid, SIGKILL);
    killed = true;
  };
  if (spec.input.empty()) in_w.Close();
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    const auto now = std::chrono::steady_clock::now();
    if (!killed && now >= spec.deadline) {
      end.timed_out = true;
      kill_child();
    }
    pollfd fds[3];
    nfds_t n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_r.fd >= 0) fds[out_i = static_cast<int>(n++)] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) fds[err_i = static_cast<int>(n++)] = {err_r.fd, POLLIN, 0};
    if (in_w.fd >= 0) fds[in_i = static_cast<int>(n++)] = {in_w.fd, POLLOUT, 0};
    const auto wait = killed ? std::chrono::milliseconds(1000)
                             : std::chrono::duration_cast<std::chrono::milliseconds>(
                                   spec.deadline - now) + std::chrono::milliseconds(1);
    if (poll(fds, n, static_cast<int>(std::min<std::int64_t>(wait.count(), 60'000))) < 0 &&
        errno != EINTR) {
      kill_child();
      break;
    }
    char buf[65536];
    if (in_i >= 0 && fds[in_i].revents) {
      const ssize_t w = write(in_w.fd, spec.input.data() + written, spec.input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) in_w.Close();
      if (written == spec.input.size()) in_w.Close();
    }
    if (out_i >= 0 && fds[out_i].revents) {
      const ssize_t r = read(out_r.fd, buf, sizeof buf);
      if (r <= 0) {
        out_r.Close();
      } else {
        events.append(buf, static_cast<std::size_t>(r));
        const bool fits = TakeLines(events, [&](std::string_view line) {
          if (killed) return;
          auto event = json::ParseObject(line);
          if (!event.ok()) {
            end.bad_output = true;
            return kill_child();
          }
          if (auto st = spec.on_event(*event); !st.ok()) {
            end.stopped = st.error();
            kill_child();
          }
        });
        if (!fits) {
          end.bad_output = true;
          kill_child();
        }
      }
    }
    if (err_i >= 0 && fds[err_i].revents) {
      const ssize_t r = read(err_r.fd, buf, sizeof buf);
      if (r <= 0) {
        err_r.Close();
      } else {
        stderr_text.append(buf, static_cast<std::size_t>(r));
        TakeLines(stderr_text, [&](std::string_view line) {
          if (logged++ < kMaxLoggedLines) logger->info("{} [{}]: {}", spec.log_name, pid, Printable(line));
        });
        if (stderr_text.size() > kMaxLine) stderr_text.clear();
      }
    }
  }
  // Both pipes are closed; the process may still run (it closed them itself): the deadline
  // still holds.
  while (true) {
    const pid_t r = waitpid(pid, &end.wait_status, killed ? 0 : WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (r == 0) {
      if (std::chrono::steady_clock::now() >= spec.deadline) {
        end.timed_out = true;
        kill_child();
      } else {
        poll(nullptr, 0, 20);
      }
    }
  }
  return end;
}

}  // namespace edgeprune::model_worker
