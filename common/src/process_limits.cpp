#include "edgeprune/common/process_limits.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace edgeprune {
namespace {

// The kernel refuses RLIM_INFINITY for RLIMIT_NOFILE; its real ceiling is fs.nr_open.
rlim_t NrOpen() {
  std::ifstream in("/proc/sys/fs/nr_open");
  unsigned long long v = 0;
  if (in >> v && v > 0) return static_cast<rlim_t>(v);
  return 1 << 20;  // the kernel's default fs.nr_open
}

Error RlimitError(const char* call) {
  return Error{ErrorKind::kInternal, "rlimit_failed",
               std::string(call) + "(RLIMIT_NOFILE) failed: " + std::strerror(errno)};
}

}  // namespace

Result<OpenFileLimit> RaiseOpenFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return RlimitError("getrlimit");
  OpenFileLimit out;
  out.soft_before = rl.rlim_cur;
  out.hard = rl.rlim_max;
  const rlim_t target = rl.rlim_max == RLIM_INFINITY ? NrOpen() : rl.rlim_max;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    rl.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return RlimitError("setrlimit");
  }
  out.soft = rl.rlim_cur;
  return out;
}

}  // namespace edgeprune
