// libFuzzer target for the data set reader and validator (server/datasets/): any bytes as an
// uploaded data set file (.npz, zip or tar of IDX, tar.gz), with a 16 MiB decompression bound.
// Properties: an accepted data set's per-class counts add up to its split sizes, it has as many
// class names as per-class counts, and its normalization has one finite mean and a positive std
// per statistic.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>

#include "fuzz_input_file.hpp"
#include "server/datasets/validator.hpp"

using namespace edgeprune;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::InputFile input(".dataset");
  datasets::ValidationLimits limits;
  limits.max_decompressed_bytes = 16 << 20;
  limits.min_train_per_class = 1;
  auto info = datasets::ValidateDatasetFile(input.Write(data, size), limits);
  if (!info.ok()) {
    if (info.error().code.rfind("dataset_", 0) != 0 && info.error().code != "io_error") std::abort();
    return 0;
  }
  for (const auto* split : {&info->train, &info->test}) {
    if (std::accumulate(split->per_class.begin(), split->per_class.end(), std::int64_t{0}) !=
        split->count) {
      std::abort();
    }
    if (split->per_class.size() != info->class_names.size()) std::abort();
  }
  if (info->mean.empty() || info->mean.size() != info->std.size()) std::abort();
  for (std::size_t i = 0; i < info->mean.size(); ++i) {
    if (!std::isfinite(info->mean[i]) || !(info->std[i] > 0)) std::abort();
  }
  return 0;
}
