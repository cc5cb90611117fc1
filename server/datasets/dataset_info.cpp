#include "server/datasets/dataset_info.hpp"

#include "edgeprune/common/json.hpp"

namespace edgeprune::datasets {
namespace bj = boost::json;

std::int64_t DatasetInfo::sample_elements() const {
  std::int64_t n = 1;
  for (auto d : sample_shape) n *= d;
  return n;
}

namespace {
template <typename T>
bj::array Array(const std::vector<T>& v) {
  bj::array a;
  for (const auto& x : v) a.emplace_back(x);
  return a;
}

Error Bad(const std::string& what) {
  return MakeError(ErrorKind::kInternal, "dataset_invalid", "stored data set info: " + what);
}

Result<std::vector<std::int64_t>> Ints(const bj::object& o, const char* key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<std::int64_t> out;
  for (const auto& v : a) {
    if (!v.is_int64()) return Bad(std::string(key) + " holds a non-integer");
    out.push_back(v.as_int64());
  }
  return out;
}

Result<std::vector<double>> Doubles(const bj::object& o, const char* key) {
  EP_ASSIGN_OR_RETURN(bj::array a, json::GetArray(o, key));
  std::vector<double> out;
  for (const auto& v : a) {
    if (v.is_double()) out.push_back(v.as_double());
    else if (v.is_int64()) out.push_back(static_cast<double>(v.as_int64()));
    else return Bad(std::string(key) + " holds a non-number");
  }
  return out;
}

Result<SplitInfo> Split(const bj::object& o, const char* key) {
  EP_ASSIGN_OR_RETURN(bj::object s, json::GetObject(o, key));
  SplitInfo out;
  EP_ASSIGN_OR_RETURN(out.count, json::GetInt(s, "count"));
  EP_ASSIGN_OR_RETURN(out.per_class, Ints(s, "per_class"));
  return out;
}
}  // namespace

bj::object ToJson(const DatasetInfo& d) {
  return bj::object{
      {"format", d.format},
      {"dtype", DTypeName(d.dtype)},
      {"sample_shape", Array(d.sample_shape)},
      {"num_classes", d.num_classes()},
      {"class_names", Array(d.class_names)},
      {"train", bj::object{{"count", d.train.count}, {"per_class", Array(d.train.per_class)}}},
      {"test", bj::object{{"count", d.test.count}, {"per_class", Array(d.test.per_class)}}},
      {"normalization",
       bj::object{{"scale", d.scale}, {"mean", Array(d.mean)}, {"std", Array(d.std)}}}};
}

Result<DatasetInfo> DatasetInfoFromJson(const bj::object& o) {
  DatasetInfo d;
  EP_ASSIGN_OR_RETURN(d.format, json::GetString(o, "format"));
  EP_ASSIGN_OR_RETURN(std::string dtype, json::GetString(o, "dtype"));
  if (dtype == "uint8") d.dtype = DType::kUInt8;
  else if (dtype == "float16") d.dtype = DType::kFloat16;
  else if (dtype == "float32") d.dtype = DType::kFloat32;
  else return Bad("dtype " + dtype);
  EP_ASSIGN_OR_RETURN(d.sample_shape, Ints(o, "sample_shape"));
  EP_ASSIGN_OR_RETURN(bj::array names, json::GetArray(o, "class_names"));
  for (const auto& n : names) {
    if (!n.is_string()) return Bad("class_names holds a non-string");
    d.class_names.emplace_back(n.as_string());
  }
  EP_ASSIGN_OR_RETURN(d.train, Split(o, "train"));
  EP_ASSIGN_OR_RETURN(d.test, Split(o, "test"));
  EP_ASSIGN_OR_RETURN(bj::object norm, json::GetObject(o, "normalization"));
  EP_ASSIGN_OR_RETURN(d.scale, json::GetDouble(norm, "scale"));
  EP_ASSIGN_OR_RETURN(d.mean, Doubles(norm, "mean"));
  EP_ASSIGN_OR_RETURN(d.std, Doubles(norm, "std"));
  if (d.sample_shape.empty() || d.class_names.empty() || d.mean.size() != d.std.size()) {
    return Bad("inconsistent fields");
  }
  return d;
}

}  // namespace edgeprune::datasets
