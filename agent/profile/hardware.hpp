#pragma once
// Hardware facts read from the operating system: /proc/cpuinfo, /proc/meminfo, statvfs and uname.
// The parsers take text so they can be checked against recorded files from other machines.
//
// Thread-safety: free functions without shared state.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

struct CpuInfo {
  std::string model;                    // "model name" (x86) or "Hardware"/"CPU part" (arm)
  std::int64_t logical_cpus = 0;        // "processor" entries
  std::vector<std::string> simd_flags;  // SIMD subset of "flags"/"Features", sorted
};

struct MemInfo {
  std::int64_t total_bytes = 0;
  std::int64_t available_bytes = 0;
};

struct HostFacts {
  std::string arch;  // uname machine
  std::string os;    // "Linux <release>"
  CpuInfo cpu;
  MemInfo mem;
  std::int64_t disk_free_bytes = 0;
};

Result<CpuInfo> ParseCpuInfo(std::string_view text);
// Error "invalid_meminfo" when MemTotal is missing. MemAvailable falls back to MemFree+Cached.
Result<MemInfo> ParseMemInfo(std::string_view text);
// Free bytes available to an unprivileged user on the file system holding path.
Result<std::int64_t> DiskFreeBytes(const std::string& path);
// Reads everything from the running system. data_dir decides which file system is measured.
Result<HostFacts> ReadHostFacts(const std::string& data_dir);

}  // namespace edgeprune::agent
