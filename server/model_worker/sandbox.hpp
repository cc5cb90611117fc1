#pragma once
// The confinement of a model worker process (model_worker_main.hpp), applied by the worker to
// itself right after exec and before it reads a byte of the model. Linux only; each layer is
// applied when the kernel offers it and reported either way, so the log says what protected a
// given run:
//   - resource limits: address space, CPU seconds, file size, open files, no core dumps;
//   - no new privileges, not dumpable, lowered CPU priority (nice) so the server's threads win;
//   - Landlock: the file system is reduced to read-write on the scratch directory and read-only
//     on the data set and the system's shared libraries/CPU description; TCP bind/connect denied
//     (ABI >= 4); signals to and abstract sockets of processes outside the sandbox denied
//     (ABI >= 6);
//   - seccomp-bpf: no sockets, no exec, no new processes (threads only), no ptrace or reading
//     other processes' memory, no signals to other processes, no mounts, namespaces, keyrings,
//     BPF, perf, io_uring or module loading.
// Without Landlock (kernels before 5.13 or with it disabled) a model that got past the operator
// allow-list could read what the server's user can read; seccomp and the resource limits still
// apply. docs/security.md has the table.
//
// Thread-safety: ApplySandbox() must run while the process has one thread.

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::model_worker {

struct SandboxPolicy {
  std::string scratch_dir;               // read-write
  std::vector<std::string> read_only;    // data set files or directories
  std::uint64_t address_space_bytes = 0;  // 0: no limit
  std::uint64_t cpu_seconds = 0;          // 0: no limit
  std::uint64_t file_size_bytes = 0;      // 0: no limit
  int nice = 10;
};

struct SandboxReport {
  int landlock_abi = 0;  // 0: not available; the worker runs without file system confinement
  bool landlock_network = false;
  bool landlock_scoped = false;
  bool seccomp = false;
  std::string Describe() const;
};

// Fails (and the worker must exit) only when a layer the kernel offers cannot be applied.
Result<SandboxReport> ApplySandbox(const SandboxPolicy& policy);

}  // namespace edgeprune::model_worker
