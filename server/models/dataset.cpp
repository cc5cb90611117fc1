#include "server/models/dataset.hpp"

#include <filesystem>
#include <regex>

#include "server/models/idx.hpp"
#include "server/models/user_dataset.hpp"

namespace edgeprune::models {
namespace {

Error DataError(const std::string& code, const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, code, message);
}

// "<dir>/<stem>.gz" when present, else "<dir>/<stem>" (Debian ships gzip; others unpack them).
std::string FindIdx(const std::string& dir, const std::string& stem) {
  std::filesystem::path gz = std::filesystem::path(dir) / (stem + ".gz");
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz.string();
  return (std::filesystem::path(dir) / stem).string();
}

torch::Tensor Normalized(const torch::Tensor& images, const Normalization& n) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  // Per channel: the first axis of a sample ([N, C, H, W], [N, C, L]; [N, F] per feature).
  std::vector<std::int64_t> view(static_cast<std::size_t>(images.dim()), 1);
  view[1] = -1;
  auto mean = torch::tensor(n.mean, opts).to(torch::kFloat32).view(view);
  auto std = torch::tensor(n.std, opts).to(torch::kFloat32).view(view);
  return (images - mean) / std;
}

}  // namespace

std::vector<std::int64_t> Dataset::image_shape() const {
  if (!images.defined()) return {};
  auto s = images.sizes().vec();
  return {s.begin() + 1, s.end()};
}

Dataset Dataset::Subset(const torch::Tensor& indices, const std::string& suffix) const {
  Dataset d = *this;
  d.name = name + suffix;
  d.images = images.index_select(0, indices).contiguous();
  d.labels = labels.index_select(0, indices).contiguous();
  return d;
}

Dataset Dataset::Head(std::int64_t n) const {
  if (n <= 0 || n >= size()) return *this;
  Dataset d = *this;
  d.images = images.narrow(0, 0, n);
  d.labels = labels.narrow(0, 0, n);
  return d;
}

const std::vector<std::string>& FashionMnistClassNames() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                                 "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

Result<Dataset> LoadIdxPair(const std::string& images_path, const std::string& labels_path,
                            const std::string& name, std::vector<std::string> class_names) {
  EP_ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path));
  EP_ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path));
  if (images.dims.size() != 3 && images.dims.size() != 4) {
    return DataError("invalid_idx", "IDX file " + images_path + " has rank " +
                                        std::to_string(images.dims.size()) +
                                        "; images must be [N, H, W] or [N, C, H, W]");
  }
  if (labels.dims.size() != 1) {
    return DataError("invalid_idx", "IDX file " + labels_path + " has rank " +
                                        std::to_string(labels.dims.size()) +
                                        "; labels must be [N]");
  }
  if (images.count() != labels.count()) {
    return DataError("invalid_idx", "IDX files disagree: " + images_path + " holds " +
                                        std::to_string(images.count()) + " images but " +
                                        labels_path + " holds " + std::to_string(labels.count()) +
                                        " labels");
  }
  std::int64_t k = static_cast<std::int64_t>(class_names.size());
  for (std::size_t i = 0; i < labels.data.size(); ++i) {
    if (labels.data[i] >= k) {
      return DataError("invalid_idx", "IDX file " + labels_path + " has label " +
                                          std::to_string(labels.data[i]) + " at index " +
                                          std::to_string(i) + " but there are only " +
                                          std::to_string(k) + " classes");
    }
  }
  std::vector<std::int64_t> shape = images.dims;
  if (shape.size() == 3) shape.insert(shape.begin() + 1, 1);
  Dataset d;
  d.name = name;
  d.class_names = std::move(class_names);
  auto bytes = torch::from_blob(images.data.data(), shape, torch::kUInt8);
  d.images = bytes.to(torch::kFloat32).div_(255.0f);
  d.labels = torch::from_blob(labels.data.data(), {labels.count()}, torch::kUInt8)
                 .to(torch::kInt64);
  return d;
}

Normalization ComputeNormalization(const torch::Tensor& images) {
  Normalization n;
  auto per_channel = images.transpose(0, 1).reshape({images.size(1), -1}).to(torch::kFloat64);
  auto mean = per_channel.mean(1);
  auto std = per_channel.std(1).clamp_min(1e-6);
  for (std::int64_t c = 0; c < images.size(1); ++c) {
    n.mean.push_back(mean[c].item<double>());
    n.std.push_back(std[c].item<double>());
  }
  return n;
}

Status ApplyNormalization(Dataset& dataset, const Normalization& norm) {
  if (!dataset.normalization.mean.empty()) {
    return DataError("invalid_argument", "data set " + dataset.name + " is already normalized");
  }
  auto channels = static_cast<std::size_t>(dataset.images.size(1));
  if (norm.mean.size() != channels || norm.std.size() != channels) {
    return DataError("shape_mismatch", "normalization has " + std::to_string(norm.mean.size()) +
                                           " channels but data set " + dataset.name + " has " +
                                           std::to_string(channels));
  }
  for (double s : norm.std) {
    if (!(s > 0.0)) return DataError("invalid_argument", "normalization std must be positive");
  }
  dataset.images = Normalized(dataset.images, norm);
  dataset.normalization = norm;
  return Ok();
}

Result<DatasetSplits> MakeSplits(Dataset train_pool, Dataset test, const SplitOptions& options,
                                 const Normalization* norm) {
  if (train_pool.image_shape() != test.image_shape()) {
    return DataError("shape_mismatch", "train images of " + train_pool.name + " and test images of " +
                                           test.name + " have different shapes");
  }
  if (train_pool.size() < 4) {
    return DataError("invalid_argument", "data set " + train_pool.name + " is too small to split");
  }
  std::int64_t n = train_pool.size();
  std::int64_t val = std::clamp<std::int64_t>(options.validation_size, 0, n / 2);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  auto perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kInt64));
  DatasetSplits s;
  auto base = train_pool.name;
  s.validation = train_pool.Subset(perm.narrow(0, 0, val), "");
  s.train = train_pool.Subset(perm.narrow(0, val, n - val), "");
  s.train.name = base + "/train";
  s.validation.name = base + "/validation";
  s.train = s.train.Head(options.train_limit);
  test.name = test.name.empty() ? base + "/test" : test.name;
  s.test = test.Head(options.test_limit);
  Normalization use = norm ? *norm : ComputeNormalization(s.train.images);
  for (Dataset* d : {&s.train, &s.validation, &s.test}) EP_RETURN_IF_ERROR(ApplyNormalization(*d, use));
  std::int64_t cal = std::clamp<std::int64_t>(options.calibration_size, 0, s.train.size());
  auto cal_perm = torch::randperm(s.train.size(), gen, torch::TensorOptions().dtype(torch::kInt64));
  s.calibration = s.train.Subset(cal_perm.narrow(0, 0, cal), "");
  s.calibration.name = base + "/calibration";
  return s;
}

Result<DatasetSplits> LoadFashionMnist(const std::string& dir, const SplitOptions& options,
                                       const Normalization* norm) {
  const auto& names = FashionMnistClassNames();
  EP_ASSIGN_OR_RETURN(Dataset train,
                      LoadIdxPair(FindIdx(dir, "train-images-idx3-ubyte"),
                                  FindIdx(dir, "train-labels-idx1-ubyte"), "fashion-mnist", names));
  EP_ASSIGN_OR_RETURN(Dataset test,
                      LoadIdxPair(FindIdx(dir, "t10k-images-idx3-ubyte"),
                                  FindIdx(dir, "t10k-labels-idx1-ubyte"), "fashion-mnist/test",
                                  names));
  return MakeSplits(std::move(train), std::move(test), options, norm);
}

Result<Dataset> MakeSyntheticPool(const SyntheticSpec& spec, bool test_part) {
  if (spec.channels < 1 || spec.height < 1 || spec.width < 1 || spec.classes < 2 ||
      spec.train_size < 4 || spec.test_size < 1) {
    return DataError("invalid_argument", "synthetic data set spec has a non-positive size");
  }
  // Class patterns come from the seed alone so train and test share them.
  auto pattern_gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  auto patterns =
      torch::rand({spec.classes, spec.channels, spec.height, spec.width}, pattern_gen);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed * 2 + (test_part ? 1 : 2));
  std::int64_t n = test_part ? spec.test_size : spec.train_size;
  auto labels = torch::randint(spec.classes, {n}, gen, torch::TensorOptions().dtype(torch::kInt64));
  auto noise = torch::randn({n, spec.channels, spec.height, spec.width}, gen) * spec.noise;
  Dataset d;
  d.name = std::string("synthetic") + (test_part ? "/test" : "");
  d.images = (patterns.index_select(0, labels) + noise).clamp(0.0, 1.0);
  d.labels = labels;
  for (std::int64_t k = 0; k < spec.classes; ++k) d.class_names.push_back("class" + std::to_string(k));
  return d;
}

Result<DatasetSplits> MakeSyntheticDataset(const SyntheticSpec& spec, const SplitOptions& options) {
  EP_ASSIGN_OR_RETURN(Dataset train, MakeSyntheticPool(spec, false));
  EP_ASSIGN_OR_RETURN(Dataset test, MakeSyntheticPool(spec, true));
  return MakeSplits(std::move(train), std::move(test), options);
}

Result<DatasetSplits> LoadDataset(const std::string& name, const std::string& dir,
                                  const SplitOptions& options, const Normalization* norm) {
  try {
    if (name != "fashion-mnist" && name.rfind("synthetic:", 0) != 0 && IsDataSetPath(name)) {
      return LoadUserDataset(name, options, norm);
    }
    if (name == "fashion-mnist") {
      return LoadFashionMnist(dir.empty() ? kDefaultFashionMnistDir : dir, options, norm);
    }
    static const std::regex synthetic(R"(synthetic:(\d{1,4})x(\d{1,5})x(\d{1,5}):(\d{1,4}))");
    std::smatch m;
    if (std::regex_match(name, m, synthetic)) {
      SyntheticSpec spec;
      spec.channels = std::stoll(m[1]);
      spec.height = std::stoll(m[2]);
      spec.width = std::stoll(m[3]);
      spec.classes = std::stoll(m[4]);
      EP_ASSIGN_OR_RETURN(Dataset train, MakeSyntheticPool(spec, false));
      EP_ASSIGN_OR_RETURN(Dataset test, MakeSyntheticPool(spec, true));
      return MakeSplits(std::move(train), std::move(test), options, norm);
    }
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInternal, "dataset_failed",
                     "loading data set '" + name + "' failed: " + e.what());
  }
  return DataError("unknown_dataset", "unknown data set '" + name +
                                          "'; use fashion-mnist, synthetic:CxHxW:K or the path "
                                          "of a data set file (.npz, IDX pairs in a zip, tar or "
                                          "directory)");
}

}  // namespace edgeprune::models
