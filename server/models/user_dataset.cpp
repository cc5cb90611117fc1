#include "server/models/user_dataset.hpp"

#include <cstring>
#include <filesystem>

#include "edgeprune/common/fs.hpp"
#include "server/datasets/normalized.hpp"
#include "server/datasets/validator.hpp"

namespace edgeprune::models {
namespace {

namespace ds = edgeprune::datasets;

// Fills one tensor per array as the reader streams it.
class TensorSink : public ds::ArraySink {
 public:
  Status Begin(ds::Role role, const ds::ArrayHeader& h) override {
    role_ = role;
    header_ = h;
    carry_.clear();
    written_ = 0;
    if (role == ds::Role::kClassNames) return Ok();
    const bool x = role == ds::Role::kXTrain || role == ds::Role::kXTest;
    if (x && !ds::IsFloat(h.dtype) && h.dtype != ds::DType::kUInt8) return Ok();  // validator refuses
    if (!x && !ds::IsInteger(h.dtype)) return Ok();
    try {
      Slot() = torch::empty(h.shape, x ? torch::kFloat32 : torch::kInt64);
    } catch (const std::exception& e) {
      return MakeError(ErrorKind::kResourceExhausted, "dataset_too_large",
                       std::string("no memory for ") + ds::RoleName(role) + ": " + e.what());
    }
    return Ok();
  }

  Status Data(std::string_view bytes) override {
    if (role_ == ds::Role::kClassNames || !Slot().defined()) return Ok();
    const std::size_t item = header_.item_size;
    if (!carry_.empty()) {
      const std::size_t take = std::min(item - carry_.size(), bytes.size());
      carry_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (carry_.size() < item) return Ok();
      Put(carry_.data(), 1);
      carry_.clear();
    }
    const std::size_t n = bytes.size() / item;
    Put(bytes.data(), n);
    carry_.assign(bytes.data() + n * item, bytes.size() - n * item);
    return Ok();
  }

  Status End() override { return Ok(); }

  torch::Tensor x[2], y[2];  // train, test

 private:
  torch::Tensor& Slot() {
    switch (role_) {
      case ds::Role::kXTrain: return x[0];
      case ds::Role::kXTest: return x[1];
      case ds::Role::kYTrain: return y[0];
      default: return y[1];
    }
  }
  void Put(const char* p, std::size_t n) {
    torch::Tensor& t = Slot();
    const auto capacity = static_cast<std::size_t>(t.numel());
    n = std::min(n, capacity - written_);  // the validator refuses a longer array
    if (t.scalar_type() == torch::kFloat32) {
      ds::ToFloat32(header_, p, n, t.data_ptr<float>() + written_);
    } else {
      ds::ToInt64(header_, p, n, t.data_ptr<std::int64_t>() + written_);
    }
    written_ += n;
  }

  ds::Role role_ = ds::Role::kXTrain;
  ds::ArrayHeader header_;
  std::string carry_;
  std::size_t written_ = 0;
};

Result<torch::Tensor> FromFile(const std::string& path, std::vector<std::int64_t> shape,
                               torch::ScalarType type) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const std::int64_t item = type == torch::kFloat32 ? 4 : 8;
  if (ec || static_cast<std::int64_t>(size) != n * item) {
    return MakeError(ErrorKind::kInvalidArgument, "dataset_invalid",
                     path + " does not hold the " + std::to_string(n) + " elements dataset.json says");
  }
  auto t = torch::from_file(path, /*shared=*/false, n, torch::TensorOptions().dtype(type));
  return t.view(shape);
}

Result<DatasetSplits> Splits(torch::Tensor x_train, torch::Tensor y_train, torch::Tensor x_test,
                             torch::Tensor y_test, const ds::DatasetInfo& info,
                             const std::string& name, const SplitOptions& options,
                             const Normalization* norm) {
  Dataset train{name + "/train", std::move(x_train), std::move(y_train), info.class_names, {}};
  Dataset test{name + "/test", std::move(x_test), std::move(y_test), info.class_names, {}};
  Normalization from_info{info.mean, info.std};
  // A data set whose statistics are per sample (more channels than the validator keeps) gets
  // the toolkit's own per-channel statistics.
  const bool per_channel = static_cast<std::int64_t>(info.mean.size()) == train.images.size(1);
  return MakeSplits(std::move(train), std::move(test), options,
                    norm ? norm : (per_channel ? &from_info : nullptr));
}

}  // namespace

bool IsDataSetPath(const std::string& name) {
  std::error_code ec;
  return name.find('/') != std::string::npos || std::filesystem::exists(name, ec);
}

Result<DatasetSplits> LoadUserDataset(const std::string& path, const SplitOptions& options,
                                      const Normalization* norm) {
  const std::string name = std::filesystem::path(path).filename().string();
  try {
    std::error_code ec;
    if (std::filesystem::exists(path + "/" + ds::kInfoFile, ec)) {
      EP_ASSIGN_OR_RETURN(ds::DatasetInfo info, ds::ReadNormalizedInfo(path));
      auto shape = [&](std::int64_t n) {
        std::vector<std::int64_t> s{n};
        s.insert(s.end(), info.sample_shape.begin(), info.sample_shape.end());
        return s;
      };
      EP_ASSIGN_OR_RETURN(auto xtr, FromFile(path + "/x_train.f32", shape(info.train.count), torch::kFloat32));
      EP_ASSIGN_OR_RETURN(auto ytr, FromFile(path + "/y_train.i64", {info.train.count}, torch::kInt64));
      EP_ASSIGN_OR_RETURN(auto xte, FromFile(path + "/x_test.f32", shape(info.test.count), torch::kFloat32));
      EP_ASSIGN_OR_RETURN(auto yte, FromFile(path + "/y_test.i64", {info.test.count}, torch::kInt64));
      if (ytr.numel() > 0 && (ytr.min().item<std::int64_t>() < 0 ||
                              ytr.max().item<std::int64_t>() >= info.num_classes())) {
        return MakeError(ErrorKind::kInvalidArgument, "dataset_label_out_of_range",
                         path + ": a label is outside the classes of dataset.json");
      }
      return Splits(xtr, ytr, xte, yte, info, name, options, norm);
    }
    TensorSink sink;
    EP_ASSIGN_OR_RETURN(ds::DatasetInfo info, ds::ValidateDatasetFile(path, {}, &sink));
    return Splits(sink.x[0], sink.y[0], sink.x[1], sink.y[1], info, name, options, norm);
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInternal, "dataset_failed",
                     "loading data set " + path + " failed: " + e.what());
  }
}

}  // namespace edgeprune::models
