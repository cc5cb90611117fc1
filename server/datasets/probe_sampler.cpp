#include "server/datasets/probe_sampler.hpp"

#include <algorithm>

namespace edgeprune::datasets {
namespace {

// Keeps the chosen rows of x_test and y_test as they stream past; ignores every other array.
class ProbeSink : public ArraySink {
 public:
  explicit ProbeSink(std::int64_t samples) : want_(samples) {}

  Status Begin(Role role, const ArrayHeader& h) override {
    active_ = (role == Role::kXTest || role == Role::kYTest) && !h.shape.empty();
    if (!active_) return Ok();
    header_ = h;
    is_x_ = role == Role::kXTest;
    rows_ = h.shape[0];
    row_ = 0;
    next_ = 0;
    row_bytes_ = h.item_size;
    row_elements_ = 1;
    for (std::size_t i = 1; i < h.shape.size(); ++i) {
      row_elements_ *= static_cast<std::size_t>(h.shape[i]);
    }
    row_bytes_ *= row_elements_;
    take_ = std::min<std::int64_t>(want_, rows_);
    carry_.clear();
    filled_ = 0;
    return Ok();
  }

  Status Data(std::string_view bytes) override {
    if (!active_) return Ok();
    while (!bytes.empty() && row_ < rows_) {
      const std::size_t n = std::min(row_bytes_ - filled_, bytes.size());
      // Only chosen rows are copied; the others are only counted.
      if (Chosen()) carry_.append(bytes.substr(0, n));
      filled_ += n;
      bytes.remove_prefix(n);
      if (filled_ < row_bytes_) break;
      if (Chosen()) Keep();
      carry_.clear();
      filled_ = 0;
      ++row_;
    }
    return Ok();
  }

  Status End() override { return Ok(); }

  std::vector<float> x;
  std::vector<std::int64_t> y;

 private:
  // Row k·rows/take for k = 0..take-1: evenly spread, deterministic.
  bool Chosen() const { return next_ < take_ && row_ == next_ * rows_ / take_; }

  void Keep() {
    if (is_x_) {
      const std::size_t at = x.size();
      x.resize(at + row_elements_);
      ToFloat32(header_, carry_.data(), row_elements_, x.data() + at);
    } else {
      std::int64_t label = 0;
      ToInt64(header_, carry_.data(), 1, &label);
      y.push_back(label);
    }
    ++next_;
  }

  std::int64_t want_;
  bool active_ = false;
  bool is_x_ = false;
  ArrayHeader header_;
  std::int64_t rows_ = 0, row_ = 0, next_ = 0, take_ = 0;
  std::size_t row_bytes_ = 0, row_elements_ = 0, filled_ = 0;
  std::string carry_;
};

}  // namespace

Result<wire::ProbeFile> SampleProbeSet(const std::string& path, std::int64_t samples,
                                       const ValidationLimits& limits) {
  if (samples < 1 || samples > wire::kMaxProbeSamples) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_argument",
                     "probe samples must be in [1, " + std::to_string(wire::kMaxProbeSamples) +
                         "], got " + std::to_string(samples));
  }
  ProbeSink sink(samples);
  EP_ASSIGN_OR_RETURN(DatasetInfo info, ValidateDatasetFile(path, limits, &sink));
  const auto elements = static_cast<std::size_t>(info.sample_elements());
  // The validator has checked both arrays; a sink that saw something else is a bug, not data.
  if (sink.y.empty() || sink.x.size() != sink.y.size() * elements) {
    return MakeError(ErrorKind::kInternal, "probe_sampling_failed",
                     path + ": drew " + std::to_string(sink.y.size()) + " labels and " +
                         std::to_string(sink.x.size()) + " values from the test split");
  }
  wire::ProbeFile p;
  p.sample_shape = info.sample_shape;
  p.labels = std::move(sink.y);
  p.data = std::move(sink.x);
  return p;
}

}  // namespace edgeprune::datasets
