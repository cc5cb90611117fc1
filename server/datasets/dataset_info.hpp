#pragma once
// What a validated data set is: its per-sample shape and element type, classes, samples per
// class in each split and the normalization its samples get (x' = (x·scale − mean[c]) / std[c],
// c the first axis of a sample: the channel of [C,H,W] and [C,L], the feature of [F]).
// It is stored with the data set and written next to its normalized arrays.
//
// Thread-safety: a value type.

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "edgeprune/common/result.hpp"
#include "server/datasets/array.hpp"

namespace edgeprune::datasets {

struct SplitInfo {
  std::int64_t count = 0;
  std::vector<std::int64_t> per_class;  // index = label
};

struct DatasetInfo {
  std::string format;                      // SourceFormatName
  DType dtype = DType::kUInt8;             // of the samples: uint8, float16 or float32
  std::vector<std::int64_t> sample_shape;  // without the sample axis: [C,H,W], [C,L], [F], ...
  std::vector<std::string> class_names;    // index = label
  SplitInfo train;
  SplitInfo test;
  double scale = 1.0;  // 1/255 for uint8
  std::vector<double> mean;
  std::vector<double> std;

  std::int64_t num_classes() const { return static_cast<std::int64_t>(class_names.size()); }
  std::int64_t sample_elements() const;
};

boost::json::object ToJson(const DatasetInfo& info);
// "dataset_invalid" (kInternal) for a stored document that is not one ToJson wrote.
Result<DatasetInfo> DatasetInfoFromJson(const boost::json::object& o);

}  // namespace edgeprune::datasets
