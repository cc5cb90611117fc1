#include "edgeprune/common/wire/profile.hpp"

#include <algorithm>

#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::wire {
namespace {

template <typename T>
std::optional<T> Min(const std::optional<T>& a, const std::optional<T>& b) {
  if (a && b) return std::min(*a, *b);
  return a ? a : b;
}

Error Context(const Error& e, const char* where) { return e.WithContext(where); }

}  // namespace

DeviceCaps DeviceCaps::Tighter(const DeviceCaps& a, const DeviceCaps& b) {
  DeviceCaps out;
  out.memory_reserve_bytes = Min(a.memory_reserve_bytes, b.memory_reserve_bytes);
  out.latency_slo_ms = Min(a.latency_slo_ms, b.latency_slo_ms);
  out.max_model_bytes = Min(a.max_model_bytes, b.max_model_bytes);
  return out;
}

boost::json::object ToJson(const DeviceCaps& caps) {
  boost::json::object o;
  if (caps.memory_reserve_bytes) o["memory_reserve_bytes"] = *caps.memory_reserve_bytes;
  if (caps.latency_slo_ms) o["latency_slo_ms"] = *caps.latency_slo_ms;
  if (caps.max_model_bytes) o["max_model_bytes"] = *caps.max_model_bytes;
  return o;
}

Result<DeviceCaps> CapsFromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(
      RejectUnknownKeys(o, {"memory_reserve_bytes", "latency_slo_ms", "max_model_bytes"}, "caps"));
  DeviceCaps caps;
  EP_ASSIGN_OR_RETURN(caps.memory_reserve_bytes,
                      ReadOptInt(o, "memory_reserve_bytes", 1, kMaxRamBytes));
  EP_ASSIGN_OR_RETURN(caps.latency_slo_ms, ReadOptDouble(o, "latency_slo_ms", 0.01, kMaxLatencySloMs));
  EP_ASSIGN_OR_RETURN(caps.max_model_bytes, ReadOptInt(o, "max_model_bytes", 1, kMaxDiskBytes));
  return caps;
}

boost::json::object ToJson(const Microbench& b) {
  return {{"matmul_gflops", b.matmul_gflops},
          {"conv_gmacs_per_s", b.conv_gmacs_per_s},
          {"conv_overhead_ms", b.conv_overhead_ms},
          {"mem_bandwidth_gbps", b.mem_bandwidth_gbps},
          {"threads", b.threads}};
}

Result<Microbench> MicrobenchFromJson(const boost::json::object& o) {
  Microbench b;
  EP_ASSIGN_OR_RETURN(b.matmul_gflops, ReadDouble(o, "matmul_gflops", 1e-6, kMaxGflops));
  EP_ASSIGN_OR_RETURN(b.conv_gmacs_per_s, ReadDouble(o, "conv_gmacs_per_s", 1e-6, kMaxGflops));
  EP_ASSIGN_OR_RETURN(b.conv_overhead_ms, ReadDouble(o, "conv_overhead_ms", 0.0, 1.0e4));
  EP_ASSIGN_OR_RETURN(b.mem_bandwidth_gbps,
                      ReadDouble(o, "mem_bandwidth_gbps", 1e-6, kMaxBandwidthGbps));
  EP_ASSIGN_OR_RETURN(b.threads, ReadInt(o, "threads", 1, kMaxCores));
  return b;
}

boost::json::object ToJson(const DeviceProfile& p) {
  boost::json::array simd;
  for (const auto& f : p.simd_flags) simd.emplace_back(f);
  return {{"arch", p.arch},
          {"cpu_model", p.cpu_model},
          {"cores", p.cores},
          {"simd_flags", std::move(simd)},
          {"ram_total_bytes", p.ram_total_bytes},
          {"ram_available_bytes", p.ram_available_bytes},
          {"disk_free_bytes", p.disk_free_bytes},
          {"os", p.os},
          {"torch_version", p.torch_version},
          {"agent_version", p.agent_version},
          {"microbench", ToJson(p.bench)},
          {"caps", ToJson(p.caps)},
          {"measured_at", p.measured_at}};
}

Result<DeviceProfile> ProfileFromJson(const boost::json::object& o) {
  DeviceProfile p;
  EP_ASSIGN_OR_RETURN(p.arch, ReadString(o, "arch", 64));
  EP_ASSIGN_OR_RETURN(p.cpu_model, ReadString(o, "cpu_model", 256));
  EP_ASSIGN_OR_RETURN(p.cores, ReadInt(o, "cores", 1, kMaxCores));
  EP_ASSIGN_OR_RETURN(p.simd_flags, ReadStringList(o, "simd_flags", 64, 32));
  EP_ASSIGN_OR_RETURN(p.ram_total_bytes, ReadInt(o, "ram_total_bytes", 1, kMaxRamBytes));
  EP_ASSIGN_OR_RETURN(p.ram_available_bytes,
                      ReadInt(o, "ram_available_bytes", 0, kMaxRamBytes));
  if (p.ram_available_bytes > p.ram_total_bytes) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field 'ram_available_bytes' exceeds 'ram_total_bytes'");
  }
  EP_ASSIGN_OR_RETURN(p.disk_free_bytes, ReadInt(o, "disk_free_bytes", 0, kMaxDiskBytes));
  EP_ASSIGN_OR_RETURN(p.os, ReadString(o, "os", 256));
  EP_ASSIGN_OR_RETURN(p.torch_version, ReadString(o, "torch_version", 64));
  EP_ASSIGN_OR_RETURN(p.agent_version, ReadString(o, "agent_version", 64));
  EP_ASSIGN_OR_RETURN(auto bench, json::GetObject(o, "microbench"));
  auto b = MicrobenchFromJson(bench);
  if (!b.ok()) return Context(b.error(), "microbench");
  p.bench = *b;
  if (auto it = o.find("caps"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_object()) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field", "field 'caps' must be an object");
    }
    auto caps = CapsFromJson(it->value().get_object());
    if (!caps.ok()) return Context(caps.error(), "caps");
    p.caps = *caps;
  }
  EP_ASSIGN_OR_RETURN(p.measured_at, ReadInt(o, "measured_at", 0, std::int64_t{1} << 40));
  return p;
}

Result<DeviceProfile> ParseProfile(std::string_view body, std::size_t max_bytes) {
  if (body.size() > max_bytes) {
    return MakeError(ErrorKind::kPayloadTooLarge, "payload_too_large",
                     "profile body is " + std::to_string(body.size()) + " bytes, the limit is " +
                         std::to_string(max_bytes));
  }
  EP_ASSIGN_OR_RETURN(auto o, json::ParseObject(body));
  return ProfileFromJson(o);
}

}  // namespace edgeprune::wire
