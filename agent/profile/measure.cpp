#include "agent/profile/measure.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "agent/profile/hardware.hpp"
#include "agent/runtime/microbench.hpp"

namespace edgeprune::agent {

Result<wire::DeviceProfile> MeasureProfile(const MeasureOptions& o) {
  EP_ASSIGN_OR_RETURN(HostFacts facts, ReadHostFacts(o.data_dir));
  EP_ASSIGN_OR_RETURN(wire::Microbench bench,
                      RunMicrobench({.threads = o.bench_threads, .total_ms = o.bench_ms}));
  wire::DeviceProfile p;
  p.arch = facts.arch;
  p.cpu_model = facts.cpu.model;
  p.cores = facts.cpu.logical_cpus;
  p.simd_flags = facts.cpu.simd_flags;
  p.ram_total_bytes = facts.mem.total_bytes;
  p.ram_available_bytes = facts.mem.available_bytes;
  p.disk_free_bytes = facts.disk_free_bytes;
  p.os = facts.os;
  p.torch_version = TorchVersion();
  p.agent_version = kAgentVersion;
  p.bench = bench;
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
