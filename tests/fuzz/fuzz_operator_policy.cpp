// libFuzzer target for the model operator scan (common/torch/operator_policy.cpp). Byte 0 picks
// the input's kind:
//   'A' (archive)  the rest is a TorchScript archive as uploaded: CheckArchive (the zip reader and
//                  the code records' __setstate__ search). Not torch::jit::load after it: LibTorch's
//                  unpickler allocates whatever length a hostile pickle declares (libFuzzer's OOM
//                  within a minute); that is LibTorch's, contained by the model worker's memory
//                  limit (model_resource_limit), and not code of ours;
//   anything else  the rest is TorchScript source for a module's methods, compiled with
//                  Module::define and scanned: the scan meets graphs the compiler makes from
//                  mutated code (nested blocks, loops, raises, calls) without an archive round trip.
// LibTorch's own exceptions (not a TorchScript archive, a compile error) are answers, not findings.
// So are crashes of LibTorch's compiler: mutated source soon finds some (an empty subscript
// segfaults it; tests/fixtures/hostile/compiler_crash.pt). The product meets them only inside the
// model worker, which contains them (model_crashed), so the source is first compiled in a forked
// child; only source the child compiled and survived is compiled again here and scanned, where
// libFuzzer sees the scan's coverage and any crash in it is ours.
#include <sanitizer/common_interface_defs.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/script.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/torch/operator_policy.hpp"
#include "fuzz_input_file.hpp"

using namespace edgeprune;

namespace {

void Scan(const torch::jit::Module& module) {
  auto refusal = model_policy::FindForbiddenOperator(module);
  if (refusal && refusal->code != "forbidden_operator" && refusal->code != "invalid_model") std::abort();
}

torch::jit::Module Define(const std::string& source) {
  torch::jit::Module module("m");
  module.register_parameter("w", torch::ones({2}), false);
  module.define(source);
  return module;
}

void ExitQuietly() { _exit(3); }

// True when compiling `source` neither crashes nor hangs LibTorch (a compile error is fine).
bool CompilesWithoutCrashing(const std::string& source) {
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // The child dies of the crash silently: no libFuzzer crash report or artifact for it.
    __sanitizer_set_death_callback(ExitQuietly);
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) signal(sig, SIG_DFL);
    alarm(5);
    try {
      Define(source);
    } catch (const std::exception&) {
    }
    _exit(0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input(".pt");
  if (size < 1) return 0;
  if (data[0] == 'A') {
    auto refusal = model_policy::CheckArchive(input.Write(data + 1, size - 1));
    if (refusal && refusal->code != "forbidden_operator" && refusal->code != "invalid_model") {
      std::abort();
    }
    return 0;
  }
  const std::string source(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (!CompilesWithoutCrashing(source)) return 0;
  try {
    Scan(Define(source));
  } catch (const std::exception&) {
  }
  return 0;
}
