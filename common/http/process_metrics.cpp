#include "common/http/process_metrics.hpp"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace edgeprune::http {
namespace {

void Append(std::string& out, const char* name, const char* type, const char* help, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out.append(buf, ec == std::errc() ? end : buf);
  out += '\n';
}

// Seconds since the epoch at which the system booted (/proc/stat "btime"): start times in
// /proc/self/stat count clock ticks from boot.
double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

void AppendProcessMetrics(std::string& out) {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return;
  // The command name (field 2) is in parentheses and may hold spaces: fields are counted from
  // the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  // f[0] is field 3 (state); utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
  if (f.size() < 22) return;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto num = [&](int field) { return std::strtod(f[field - 3].c_str(), nullptr); };
  Append(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.",
         (num(14) + num(15)) / tick);
  Append(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         num(24) * page);
  Append(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", num(23));
  Append(out, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", BootTime() + num(22) / tick);
  std::error_code ec;
  double fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) Append(out, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
  long max_fds = sysconf(_SC_OPEN_MAX);
  if (max_fds > 0) {
    Append(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
           static_cast<double>(max_fds));
  }
}

}  // namespace edgeprune::http
