#include "server/model_worker/sandbox.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace edgeprune::model_worker {
namespace {

Error SandboxError(const std::string& what) {
  return MakeError(ErrorKind::kInternal, "sandbox_failed",
                   "model worker sandbox: " + what + ": " + std::strerror(errno));
}

Status SetLimit(int resource, std::uint64_t soft, std::uint64_t hard, const char* name) {
  rlimit limit{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
  if (setrlimit(resource, &limit) != 0) return SandboxError(std::string("setrlimit ") + name);
  return Ok();
}

// Landlock's user API grew after Debian 12's headers: the ruleset attribute gained
// handled_access_net (ABI 4) and scoped (ABI 6). The kernel takes the size we pass.
struct RulesetAttr {
  std::uint64_t handled_access_fs = 0;
  std::uint64_t handled_access_net = 0;
  std::uint64_t scoped = 0;
};
constexpr std::uint64_t kFsRefer = 1ULL << 13;     // ABI 2
constexpr std::uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr std::uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
constexpr std::uint64_t kNetBindTcp = 1ULL << 0;   // ABI 4
constexpr std::uint64_t kNetConnectTcp = 1ULL << 1;
constexpr std::uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr std::uint64_t kScopeSignal = 1ULL << 1;
// Rights that make sense on a file (the kernel refuses directory rights on a file rule).
constexpr std::uint64_t kFileRights = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                                      LANDLOCK_ACCESS_FS_READ_FILE | kFsTruncate | kFsIoctlDev;
constexpr std::uint64_t kReadRights = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;

std::uint64_t HandledFs(int abi) {
  std::uint64_t rights = (1ULL << 13) - 1;  // ABI 1: execute .. make_sym
  if (abi >= 2) rights |= kFsRefer;
  if (abi >= 3) rights |= kFsTruncate;
  if (abi >= 5) rights |= kFsIoctlDev;
  return rights;
}

// Adds "path and everything beneath it" with `rights`; a path that does not exist is skipped
// (nothing is granted for it).
Status AllowPath(int ruleset, const std::string& path, std::uint64_t rights, std::uint64_t handled) {
  const int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Ok();
    return SandboxError("opening " + path);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    return SandboxError("stat " + path);
  }
  landlock_path_beneath_attr rule{};
  rule.allowed_access = rights & handled & (S_ISDIR(st.st_mode) ? ~0ULL : kFileRights);
  rule.parent_fd = fd;
  const long rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
  close(fd);
  if (rc != 0) return SandboxError("landlock rule for " + path);
  return Ok();
}

Status ApplyLandlock(const SandboxPolicy& policy, SandboxReport* report) {
  const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi <= 0) return Ok();  // not built into this kernel or disabled: reported as ABI 0
  RulesetAttr attr;
  attr.handled_access_fs = HandledFs(static_cast<int>(abi));
  std::size_t size = sizeof(std::uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;  // no rule: every TCP port denied
    size = 2 * sizeof(std::uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnix | kScopeSignal;
    size = sizeof(RulesetAttr);
  }
  const int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) return SandboxError("landlock_create_ruleset");
  auto add_all = [&]() -> Status {
    const std::uint64_t handled = attr.handled_access_fs;
    // Plain files and directories only: no links out, devices, sockets or pipes.
    const std::uint64_t scratch_rights =
        LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
        LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
        LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
        LANDLOCK_ACCESS_FS_MAKE_REG | kFsTruncate;
    EP_RETURN_IF_ERROR(AllowPath(ruleset, policy.scratch_dir, scratch_rights, handled));
    for (const auto& path : policy.read_only) {
      EP_RETURN_IF_ERROR(AllowPath(ruleset, path, kReadRights, handled));
    }
    // Public, secret-free system files LibTorch may open after start-up: shared libraries it
    // loads lazily, the CPU description its kernels are chosen by, and the random device.
    for (const char* path : {"/usr/lib", "/usr/share/zoneinfo", "/proc/cpuinfo",
                             "/sys/devices/system/cpu", "/dev/urandom", "/dev/null"}) {
      EP_RETURN_IF_ERROR(AllowPath(ruleset, path, kReadRights, handled));
    }
    return Ok();
  };
  Status added = add_all();
  if (added.ok() && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    added = SandboxError("landlock_restrict_self");
  }
  close(ruleset);
  EP_RETURN_IF_ERROR(added);
  report->landlock_abi = static_cast<int>(abi);
  report->landlock_network = abi >= 4;
  report->landlock_scoped = abi >= 6;
  return Ok();
}

Status ApplySeccomp(SandboxReport* report) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return SandboxError("seccomp_init");
  struct Release {
    scmp_filter_ctx ctx;
    ~Release() { seccomp_release(ctx); }
  } release{ctx};
  const auto eperm = SCMP_ACT_ERRNO(EPERM);
  // Denied outright: talking to the network or other processes, starting programs, changing
  // what the process can see, and kernel interfaces a model never needs.
  for (const char* name :
       {"socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "execve",
        "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
        "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "tkill", "mount", "umount2",
        "pivot_root", "chroot", "unshare", "setns", "open_by_handle_at", "name_to_handle_at",
        "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
        "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module",
        "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
        "quotactl", "syslog", "mknod", "mknodat", "fanotify_init", "move_mount", "fsopen",
        "fsmount", "open_tree"}) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, eperm, nr, 0) != 0) return SandboxError(std::string("seccomp ") + name);
  }
  // Threads yes, processes no: clone without CLONE_THREAD is refused; clone3 answers ENOSYS so
  // the C library falls back to clone, whose flags the filter can read.
  if (seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
                       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)) != 0 ||
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0) {
    return SandboxError("seccomp clone");
  }
  // Signals only to itself (abort, thread cancellation); kill(0, ...) would reach the server's
  // process group.
  const auto self = static_cast<scmp_datum_t>(getpid());
  for (int nr : {SCMP_SYS(kill), SCMP_SYS(tgkill), SCMP_SYS(rt_sigqueueinfo),
                 SCMP_SYS(rt_tgsigqueueinfo)}) {
    if (seccomp_rule_add(ctx, eperm, nr, 1, SCMP_A0(SCMP_CMP_NE, self)) != 0) {
      return SandboxError("seccomp signals");
    }
  }
  // Pushing characters into a terminal's input.
  if (seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TIOCSTI)) != 0) {
    return SandboxError("seccomp ioctl");
  }
  if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0 || seccomp_load(ctx) != 0) {
    return SandboxError("seccomp_load");
  }
  report->seccomp = true;
  return Ok();
}

int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

}  // namespace

std::string SandboxReport::Describe() const {
  std::string s = landlock_abi > 0 ? "landlock ABI " + std::to_string(landlock_abi) +
                                         " (files" + (landlock_network ? ", tcp" : "") +
                                         (landlock_scoped ? ", signals" : "") + ")"
                                   : "landlock unavailable (no file system confinement)";
  s += seccomp ? ", seccomp" : ", no seccomp";
  return s + ", resource limits";
}

Result<SandboxReport> ApplySandbox(const SandboxPolicy& policy) {
  // Landlock confines the calling thread only; a second thread would escape it.
  if (const int threads = ThreadCount(); threads != 1) {
    return MakeError(ErrorKind::kInternal, "sandbox_failed",
                     "model worker sandbox: applied with " + std::to_string(threads) +
                         " threads running (must be 1)");
  }
  EP_RETURN_IF_ERROR(SetLimit(RLIMIT_CORE, 0, 0, "core"));
  EP_RETURN_IF_ERROR(SetLimit(RLIMIT_NOFILE, 256, 256, "nofile"));
  if (policy.address_space_bytes > 0) {
    EP_RETURN_IF_ERROR(
        SetLimit(RLIMIT_AS, policy.address_space_bytes, policy.address_space_bytes, "as"));
  }
  if (policy.cpu_seconds > 0) {
    // SIGXCPU at the soft limit (the parent reports model_resource_limit), SIGKILL 5 s later.
    EP_RETURN_IF_ERROR(SetLimit(RLIMIT_CPU, policy.cpu_seconds, policy.cpu_seconds + 5, "cpu"));
  }
  if (policy.file_size_bytes > 0) {
    EP_RETURN_IF_ERROR(
        SetLimit(RLIMIT_FSIZE, policy.file_size_bytes, policy.file_size_bytes, "fsize"));
  }
  if (setpriority(PRIO_PROCESS, 0, policy.nice) != 0) return SandboxError("setpriority");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return SandboxError("no_new_privs");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return SandboxError("dumpable");
  SandboxReport report;
  EP_RETURN_IF_ERROR(ApplyLandlock(policy, &report));
  EP_RETURN_IF_ERROR(ApplySeccomp(&report));
  return report;
}

}  // namespace edgeprune::model_worker
