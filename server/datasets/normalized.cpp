#include "server/datasets/normalized.hpp"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::datasets {
namespace {

Error WriteError(const std::string& path) {
  return MakeError(ErrorKind::kIo, "write_failed", "writing " + path + ": " + std::strerror(errno));
}

// Converts samples to float32 (× scale) and labels to int64 while writing them.
class NormalizedWriter : public ArraySink {
 public:
  explicit NormalizedWriter(std::string dir) : dir_(std::move(dir)) {}
  ~NormalizedWriter() override {
    if (file_) std::fclose(file_);
  }

  Status Begin(Role role, const ArrayHeader& h) override {
    role_ = role;
    header_ = h;
    carry_.clear();
    if (role == Role::kClassNames) return Ok();  // they go to dataset.json
    path_ = dir_ + "/" + NormalizedFileName(role);
    file_ = std::fopen(path_.c_str(), "wbx");
    if (!file_) return WriteError(path_);
    return Ok();
  }

  Status Data(std::string_view bytes) override {
    if (role_ == Role::kClassNames) return Ok();
    const std::size_t item = header_.item_size;
    if (!carry_.empty()) {
      const std::size_t take = std::min(item - carry_.size(), bytes.size());
      carry_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (carry_.size() < item) return Ok();
      const std::string whole = std::move(carry_);
      carry_.clear();
      EP_RETURN_IF_ERROR(Convert(whole.data(), 1));
    }
    const std::size_t n = bytes.size() / item;
    EP_RETURN_IF_ERROR(Convert(bytes.data(), n));
    carry_.assign(bytes.data() + n * item, bytes.size() - n * item);
    return Ok();
  }

  Status End() override {
    if (!file_) return Ok();
    const bool ok = std::fflush(file_) == 0 && std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok) return WriteError(path_);
    return Ok();
  }

 private:
  Status Convert(const char* p, std::size_t n) {
    const bool x = role_ == Role::kXTrain || role_ == Role::kXTest;
    out_.resize(n * 8);
    if (x) {
      ToFloat32(header_, p, n, reinterpret_cast<float*>(out_.data()));
      out_.resize(n * 4);
    } else {
      ToInt64(header_, p, n, reinterpret_cast<std::int64_t*>(out_.data()));
    }
    if (!out_.empty() && std::fwrite(out_.data(), 1, out_.size(), file_) != out_.size()) {
      return WriteError(path_);
    }
    return Ok();
  }

  std::string dir_;
  Role role_ = Role::kXTrain;
  ArrayHeader header_;
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string carry_;
  std::string out_;
};

}  // namespace

const char* NormalizedFileName(Role role) {
  switch (role) {
    case Role::kXTrain: return "x_train.f32";
    case Role::kXTest: return "x_test.f32";
    case Role::kYTrain: return "y_train.i64";
    case Role::kYTest: return "y_test.i64";
    case Role::kClassNames: return "class_names";
  }
  return "?";
}

Result<DatasetInfo> WriteNormalized(const std::string& source, const std::string& out_dir,
                                    const ValidationLimits& limits) {
  std::error_code ec;
  if (std::filesystem::exists(out_dir, ec) && !std::filesystem::is_empty(out_dir, ec)) {
    return MakeError(ErrorKind::kFailedPrecondition, "not_empty", out_dir + " is not empty");
  }
  EP_RETURN_IF_ERROR(fs::EnsureDir(out_dir, 0700));
  auto result = [&]() -> Result<DatasetInfo> {
    NormalizedWriter writer(out_dir);
    EP_ASSIGN_OR_RETURN(DatasetInfo info, ValidateDatasetFile(source, limits, &writer));
    EP_RETURN_IF_ERROR(
        fs::WriteFileAtomic(out_dir + "/" + kInfoFile, json::Serialize(ToJson(info)), 0600));
    return info;
  }();
  if (!result.ok()) {
    for (const char* name : {"x_train.f32", "x_test.f32", "y_train.i64", "y_test.i64", kInfoFile}) {
      std::filesystem::remove(out_dir + "/" + name, ec);
    }
  }
  return result;
}

Result<DatasetInfo> ReadNormalizedInfo(const std::string& dir) {
  EP_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(dir + "/" + kInfoFile, 16 * 1024 * 1024));
  EP_ASSIGN_OR_RETURN(boost::json::object o, json::ParseObject(text));
  return DatasetInfoFromJson(o);
}

}  // namespace edgeprune::datasets
