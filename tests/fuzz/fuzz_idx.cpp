// libFuzzer target for the IDX reader (server/models/idx.cpp): raw and gzip-compressed input.
// Property: an accepted array holds exactly product(dims) elements, and writing it back with
// WriteIdx and reading that gives the same array.
#include <cstdint>
#include <cstdlib>

#include "fuzz_input_file.hpp"
#include "server/models/idx.hpp"

using namespace edgeprune;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input(".idx");
  auto array = models::ReadIdx(input.Write(data, size));
  if (!array.ok()) return 0;
  std::uint64_t count = 1;
  for (auto d : array->dims) count *= static_cast<std::uint64_t>(d);
  if (array->dims.empty() || count != array->data.size()) std::abort();
  const std::string copy = input.dir() + "/copy.idx";
  if (!models::WriteIdx(copy, *array).ok()) std::abort();
  auto again = models::ReadIdx(copy);
  if (!again.ok() || again->dims != array->dims || again->data != array->data) std::abort();
  return 0;
}
