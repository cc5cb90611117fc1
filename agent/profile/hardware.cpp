#include "agent/profile/hardware.hpp"

#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <sstream>

#include "edgeprune/common/fs.hpp"

namespace edgeprune::agent {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool IsSimdFlag(std::string_view f) {
  static const char* kPrefixes[] = {"sse", "ssse3", "avx", "fma", "neon", "asimd", "sve", "amx",
                                    "f16c", "vnni", "mmx"};
  for (const char* p : kPrefixes) {
    if (f.substr(0, std::strlen(p)) == p) return true;
  }
  return f == "pni";  // SSE3 in Linux's naming
}

}  // namespace

Result<CpuInfo> ParseCpuInfo(std::string_view text) {
  CpuInfo info;
  std::set<std::string> simd;
  std::string arm_part;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string_view key = Trim(std::string_view(line).substr(0, colon));
    std::string_view value = Trim(std::string_view(line).substr(colon + 1));
    if (key == "processor") {
      ++info.logical_cpus;
    } else if ((key == "model name" || key == "Hardware" || key == "Model") && info.model.empty()) {
      info.model = std::string(value);
    } else if (key == "CPU part" && arm_part.empty()) {
      arm_part = std::string(value);
    } else if (key == "flags" || key == "Features") {
      std::istringstream flags{std::string(value)};
      std::string f;
      while (flags >> f) {
        if (IsSimdFlag(f)) simd.insert(f);
      }
    }
  }
  if (info.logical_cpus == 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_cpuinfo",
                     "cpuinfo lists no 'processor' entries");
  }
  if (info.model.empty()) info.model = arm_part.empty() ? "unknown" : "ARM part " + arm_part;
  info.simd_flags.assign(simd.begin(), simd.end());
  if (info.simd_flags.size() > 64) info.simd_flags.resize(64);
  return info;
}

Result<MemInfo> ParseMemInfo(std::string_view text) {
  std::int64_t total = -1, available = -1, free_kb = 0, cached = 0;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::string_view rest = Trim(std::string_view(line).substr(colon + 1));
    std::int64_t kb = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kb);
    if (ec != std::errc()) continue;
    (void)p;
    if (key == "MemTotal") total = kb;
    else if (key == "MemAvailable") available = kb;
    else if (key == "MemFree") free_kb = kb;
    else if (key == "Cached") cached = kb;
  }
  if (total <= 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_meminfo", "meminfo has no MemTotal line");
  }
  if (available < 0) available = free_kb + cached;
  return MemInfo{total * 1024, std::min(available, total) * 1024};
}

Result<std::int64_t> DiskFreeBytes(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return MakeError(ErrorKind::kIo, "statvfs_failed",
                     "cannot measure free space of " + path + ": " + std::strerror(errno));
  }
  return static_cast<std::int64_t>(st.f_bavail) * static_cast<std::int64_t>(st.f_frsize);
}

Result<HostFacts> ReadHostFacts(const std::string& data_dir) {
  HostFacts facts;
  struct utsname u {};
  if (::uname(&u) != 0) {
    return MakeError(ErrorKind::kIo, "uname_failed", std::string("uname: ") + std::strerror(errno));
  }
  facts.arch = u.machine;
  facts.os = std::string(u.sysname) + " " + u.release;
  EP_ASSIGN_OR_RETURN(auto cpuinfo, fs::ReadFile("/proc/cpuinfo", 4 * 1024 * 1024));
  EP_ASSIGN_OR_RETURN(facts.cpu, ParseCpuInfo(cpuinfo));
  // Online CPUs may be fewer than listed (hotplug, cgroups do not show here).
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0) facts.cpu.logical_cpus = std::min<std::int64_t>(facts.cpu.logical_cpus, online);
  EP_ASSIGN_OR_RETURN(auto meminfo, fs::ReadFile("/proc/meminfo", 1024 * 1024));
  EP_ASSIGN_OR_RETURN(facts.mem, ParseMemInfo(meminfo));
  EP_ASSIGN_OR_RETURN(facts.disk_free_bytes, DiskFreeBytes(data_dir));
  return facts;
}

}  // namespace edgeprune::agent
