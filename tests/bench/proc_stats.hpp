#pragma once
// What the benchmarks read from /proc about a process and the machine: a /proc/<pid>/status field,
// CPU seconds used, and the load average to print next to the figures.
//
// Thread-safety: stateless functions.

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace edgeprune::bench {

// A "<field> <n> kB"-style value of /proc/<pid>/status (e.g. "VmRSS:"), or -1 when absent.
inline long ProcStatusKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field) + 1);
  }
  return -1;
}

// User + system CPU seconds the process has used so far; 0 when unreadable.
inline double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), {});
  auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> f;
  std::string tok;
  for (size_t i = close + 2; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ' ') {
      f.push_back(tok);
      tok.clear();
    } else {
      tok += s[i];
    }
  }
  if (f.size() < 13) return 0;
  // utime, stime are fields 14, 15 (1-based); f[0] is field 3.
  return (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// "1-min 5-min 15-min" from /proc/loadavg.
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace edgeprune::bench
