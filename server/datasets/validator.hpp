#pragma once
// Validates a data set while its arrays stream past (constant memory: per-class counters and
// per-channel sums, never the samples), and reports what it is (DatasetInfo). Refusals:
//   dataset_invalid            missing or unsupported arrays, class names that are empty, long,
//                              repeated or not text, fewer than two classes
//   dataset_too_large          more decompressed bytes, samples or classes than the limits
//   dataset_count_mismatch     x_train/y_train (or x_test/y_test) sample counts differ
//   dataset_shape_mismatch     train/test samples of different shapes or element types, a
//                              per-sample shape of rank 0 or above 3, too many elements a sample
//   dataset_label_out_of_range a label < 0 or >= the number of classes
//   dataset_not_finite         NaN or ±Inf in float samples
//   dataset_too_few_samples    a class under min_train_per_class (train) or min_test_per_class
//
// Thread-safety: free functions; a Validator belongs to one reader.

#include <cstdint>
#include <memory>
#include <string>

#include "edgeprune/common/result.hpp"
#include "server/datasets/array.hpp"
#include "server/datasets/dataset_info.hpp"

namespace edgeprune::datasets {

struct ValidationLimits {
  std::uint64_t max_decompressed_bytes = 8ull << 30;
  std::int64_t max_classes = 10000;
  std::int64_t min_train_per_class = 5;
  std::int64_t min_test_per_class = 1;
};

// Reads the file at `path` (any format of dataset_reader.hpp) and validates it. `also`, when
// given, receives the same arrays (e.g. a NormalizedWriter); its errors stop the read.
Result<DatasetInfo> ValidateDatasetFile(const std::string& path, const ValidationLimits& limits,
                                        ArraySink* also = nullptr);

// The sink itself, for callers that feed arrays from elsewhere (tests, the fuzz target).
class Validator : public ArraySink {
 public:
  explicit Validator(ValidationLimits limits);
  ~Validator() override;
  Status Begin(Role role, const ArrayHeader& header) override;
  Status Data(std::string_view bytes) override;
  Status End() override;
  // After the last array: the cross-array checks, then the summary.
  Result<DatasetInfo> Finish(const std::string& format);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace edgeprune::datasets
