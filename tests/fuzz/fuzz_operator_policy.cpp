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
#include <torch/script.h>

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
  try {
    torch::jit::Module module("m");
    module.register_parameter("w", torch::ones({2}), false);
    module.define(source);
    Scan(module);
  } catch (const std::exception&) {
  }
  return 0;
}
