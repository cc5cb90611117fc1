#include "server/datasets/validator.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>

#include "edgeprune/common/wire/manifest.hpp"
#include "server/datasets/dataset_error.hpp"
#include "server/datasets/dataset_reader.hpp"

namespace edgeprune::datasets {
namespace {

constexpr std::size_t kMaxClassNameBytes = 128;
constexpr std::size_t kMaxStatChannels = 65536;

struct XStats {
  std::optional<ArrayHeader> header;
  std::vector<double> sum, sumsq;
  std::vector<std::uint64_t> count;
};

struct YStats {
  std::optional<ArrayHeader> header;
  std::vector<std::int64_t> per_class;
  std::int64_t max_label = -1;
};

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool ValidUtf8Text(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    if (len == 1 && (c < 0x20 || c == 0x7F)) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

struct Validator::State {
  ValidationLimits limits;
  XStats x[2];  // train, test
  YStats y[2];
  std::optional<std::vector<std::string>> class_names;
  std::uint64_t total_bytes = 0;
  // The array being read.
  std::optional<Role> role;
  ArrayHeader header;
  std::uint64_t element = 0;     // index of the next element
  std::string carry;             // a partial element from the previous chunk
  std::string names_bytes;       // class_names, collected (bounded by kMaxClasses · item)
  std::uint64_t inner = 1;       // elements per channel run in a sample
  std::uint64_t channels = 1;

  Status Element(const char* p);
  Status XRun(const char* p, std::size_t n);  // n whole elements of one channel
};

Validator::Validator(ValidationLimits limits) : s_(std::make_unique<State>()) {
  s_->limits = limits;
}
Validator::~Validator() = default;

Status Validator::Begin(Role role, const ArrayHeader& h) {
  auto& s = *s_;
  const std::string what = RoleName(role);
  const auto bytes = h.ByteSize();
  if (!bytes) return TooLarge(what + " has an impossibly large shape");
  s.total_bytes += *bytes;
  if (s.total_bytes > s.limits.max_decompressed_bytes) {
    return TooLarge("the arrays hold more than " + std::to_string(s.limits.max_decompressed_bytes) +
                    " bytes");
  }
  if (h.shape.empty()) return ShapeMismatch(what + " is a scalar");
  s.role = role;
  s.header = h;
  s.element = 0;
  s.carry.clear();
  if (role == Role::kXTrain || role == Role::kXTest) {
    if (h.dtype != DType::kUInt8 && h.dtype != DType::kFloat16 && h.dtype != DType::kFloat32) {
      return Invalid(what + " is " + DTypeName(h.dtype) + "; samples must be uint8, float16 or float32");
    }
    if (h.shape.size() < 2 || h.shape.size() > 4) {
      return ShapeMismatch(what + " must be [N, F], [N, C, L], [N, H, W] or [N, C, H, W]");
    }
    std::int64_t elements = 1;
    for (std::size_t i = 1; i < h.shape.size(); ++i) {
      if (h.shape[i] < 1) return ShapeMismatch(what + " has an empty sample axis");
      elements *= h.shape[i];
      if (elements > wire::kMaxInputElements) {
        return ShapeMismatch(what + ": a sample has more than " +
                             std::to_string(wire::kMaxInputElements) + " elements");
      }
    }
    auto& x = s.x[role == Role::kXTrain ? 0 : 1];
    x.header = h;
    s.channels = static_cast<std::uint64_t>(h.shape[1]);
    s.inner = static_cast<std::uint64_t>(elements) / s.channels;
    if (s.channels > kMaxStatChannels) {  // one statistic for all
      s.inner = static_cast<std::uint64_t>(elements);
      s.channels = 1;
    }
    x.sum.assign(s.channels, 0.0);
    x.sumsq.assign(s.channels, 0.0);
    x.count.assign(s.channels, 0);
  } else if (role == Role::kYTrain || role == Role::kYTest) {
    if (!IsInteger(h.dtype)) return Invalid(what + " is " + DTypeName(h.dtype) + "; labels must be integers");
    if (h.shape.size() != 1) return ShapeMismatch(what + " must be one label per sample: [N]");
    auto& y = s.y[role == Role::kYTrain ? 0 : 1];
    y.header = h;
    y.per_class.clear();
  } else {
    if (h.dtype != DType::kUtf32 && h.dtype != DType::kBytes) {
      return Invalid("class_names must be strings");
    }
    if (h.shape.size() != 1) return Invalid("class_names must be a list of names");
    if (h.shape[0] > s.limits.max_classes) {
      return TooLarge("more than " + std::to_string(s.limits.max_classes) + " class names");
    }
    s.names_bytes.clear();
  }
  return Ok();
}

Status Validator::State::XRun(const char* p, std::size_t n) {
  auto& x = this->x[*role == Role::kXTrain ? 0 : 1];
  const std::uint64_t c = (element / inner) % channels;
  double sum = 0, sumsq = 0;
  switch (header.dtype) {
    case DType::kUInt8: {
      // 32-bit sums over blocks the compiler vectorizes (255² · 65,536 < 2³²), added up in 64
      // bits: this loop is the validator's hottest (a third of its time on a 1 GiB upload).
      std::uint64_t is = 0, iss = 0;
      for (std::size_t i = 0; i < n;) {
        const std::size_t end = std::min(n, i + 65536);
        std::uint32_t bs = 0, bss = 0;
        for (; i < end; ++i) {
          const std::uint32_t v = static_cast<unsigned char>(p[i]);
          bs += v;
          bss += v * v;
        }
        is += bs;
        iss += bss;
      }
      sum = static_cast<double>(is) / 255.0;
      sumsq = static_cast<double>(iss) / (255.0 * 255.0);
      break;
    }
    case DType::kFloat32:
    case DType::kFloat16: {
      const bool half = header.dtype == DType::kFloat16;
      for (std::size_t i = 0; i < n; ++i) {
        float v;
        if (half) {
          std::uint16_t b;
          std::memcpy(&b, p + 2 * i, 2);
          v = HalfToFloat(b);
        } else {
          std::memcpy(&v, p + 4 * i, 4);
        }
        if (!std::isfinite(v)) {
          return NotFinite(std::string(RoleName(*role)) + " holds a NaN or an infinity (sample " +
                           std::to_string((element + i) / (inner * channels)) + ")");
        }
        sum += v;
        sumsq += static_cast<double>(v) * v;
      }
      break;
    }
    default:
      return Invalid("unexpected sample type");
  }
  x.sum[c] += sum;
  x.sumsq[c] += sumsq;
  x.count[c] += n;
  element += n;
  return Ok();
}

Status Validator::State::Element(const char* p) {
  if (*role == Role::kClassNames) {
    names_bytes.append(p, header.item_size);
    ++element;
    return Ok();
  }
  // A label.
  std::int64_t v = 0;
  bool negative = false, huge = false;
  switch (header.dtype) {
    case DType::kUInt8: v = static_cast<unsigned char>(*p); break;
    case DType::kInt8: v = static_cast<signed char>(*p); break;
    case DType::kUInt16: { std::uint16_t t; std::memcpy(&t, p, 2); v = t; break; }
    case DType::kInt16: { std::int16_t t; std::memcpy(&t, p, 2); v = t; break; }
    case DType::kUInt32: { std::uint32_t t; std::memcpy(&t, p, 4); v = t; break; }
    case DType::kInt32: { std::int32_t t; std::memcpy(&t, p, 4); v = t; break; }
    case DType::kUInt64: { std::uint64_t t; std::memcpy(&t, p, 8); huge = t > (1ull << 62); v = huge ? 0 : static_cast<std::int64_t>(t); break; }
    case DType::kInt64: { std::memcpy(&v, p, 8); break; }
    default: return Invalid("unexpected label type");
  }
  negative = v < 0;
  auto& y = this->y[*role == Role::kYTrain ? 0 : 1];
  if (negative || huge || v >= limits.max_classes) {
    return LabelOutOfRange(std::string(RoleName(*role)) + "[" + std::to_string(element) + "] is " +
                           (huge ? std::string("above 2^62") : std::to_string(v)) +
                           "; labels must be 0 to the number of classes − 1");
  }
  if (static_cast<std::size_t>(v) >= y.per_class.size()) y.per_class.resize(v + 1, 0);
  ++y.per_class[v];
  y.max_label = std::max(y.max_label, v);
  ++element;
  return Ok();
}

Status Validator::Data(std::string_view bytes) {
  auto& s = *s_;
  if (!s.role) return MakeError(ErrorKind::kInternal, "dataset_reader", "data outside an array");
  const std::size_t item = s.header.item_size;
  // Finish a partial element first.
  if (!s.carry.empty()) {
    const std::size_t need = item - s.carry.size();
    const std::size_t take = std::min(need, bytes.size());
    s.carry.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (s.carry.size() < item) return Ok();
    const std::string whole = std::move(s.carry);
    s.carry.clear();
    EP_RETURN_IF_ERROR(Data(whole));
  }
  const bool is_x = *s.role == Role::kXTrain || *s.role == Role::kXTest;
  const std::size_t whole = bytes.size() / item;
  const char* p = bytes.data();
  if (is_x) {
    std::size_t left = whole;
    while (left > 0) {
      const std::size_t in_run = static_cast<std::size_t>(s.inner - s.element % s.inner);
      const std::size_t n = std::min(left, in_run);
      EP_RETURN_IF_ERROR(s.XRun(p, n));
      p += n * item;
      left -= n;
    }
  } else {
    for (std::size_t i = 0; i < whole; ++i, p += item) EP_RETURN_IF_ERROR(s.Element(p));
  }
  s.carry.assign(p, bytes.size() - whole * item);
  return Ok();
}

Status Validator::End() {
  auto& s = *s_;
  if (!s.role) return MakeError(ErrorKind::kInternal, "dataset_reader", "end outside an array");
  if (!s.carry.empty()) return Invalid(std::string(RoleName(*s.role)) + " ends mid-element");
  if (*s.role == Role::kClassNames) {
    std::vector<std::string> names;
    std::set<std::string> seen;
    const std::size_t item = s.header.item_size;
    for (std::size_t off = 0; off + item <= s.names_bytes.size(); off += item) {
      std::string name;
      if (s.header.dtype == DType::kUtf32) {
        for (std::size_t k = 0; k < item; k += 4) {
          std::uint32_t cp;
          std::memcpy(&cp, s.names_bytes.data() + off + k, 4);
          if (cp == 0) break;
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
            return Invalid("class_names holds a character that is not Unicode");
          }
          AppendUtf8(name, cp);
        }
      } else {
        name.assign(s.names_bytes.data() + off, strnlen(s.names_bytes.data() + off, item));
      }
      if (name.empty() || name.size() > kMaxClassNameBytes || !ValidUtf8Text(name)) {
        return Invalid("class name " + std::to_string(names.size()) +
                       " is empty, longer than 128 bytes, or not printable UTF-8 text");
      }
      if (!seen.insert(name).second) return Invalid("class name '" + name + "' appears twice");
      names.push_back(std::move(name));
    }
    s.class_names = std::move(names);
    s.names_bytes.clear();
  }
  s.role.reset();
  return Ok();
}

Result<DatasetInfo> Validator::Finish(const std::string& format) {
  auto& s = *s_;
  for (int i = 0; i < 2; ++i) {
    const char* split = i == 0 ? "train" : "test";
    if (!s.x[i].header) return Invalid(std::string("the data set has no x_") + split);
    if (!s.y[i].header) return Invalid(std::string("the data set has no y_") + split);
    const std::int64_t nx = s.x[i].header->shape[0], ny = s.y[i].header->shape[0];
    if (nx != ny) {
      return CountMismatch(std::string("x_") + split + " holds " + std::to_string(nx) +
                           " samples and y_" + split + " " + std::to_string(ny) + " labels");
    }
    if (nx == 0) return TooFewSamples(std::string("the ") + split + " split is empty");
  }
  const auto& xtr = *s.x[0].header;
  const auto& xte = *s.x[1].header;
  if (!std::equal(xtr.shape.begin() + 1, xtr.shape.end(), xte.shape.begin() + 1, xte.shape.end())) {
    return ShapeMismatch("x_train and x_test samples have different shapes");
  }
  if (xtr.dtype != xte.dtype) {
    return ShapeMismatch(std::string("x_train is ") + DTypeName(xtr.dtype) + " and x_test " +
                         DTypeName(xte.dtype));
  }
  DatasetInfo info;
  info.format = format;
  info.dtype = xtr.dtype;
  info.sample_shape.assign(xtr.shape.begin() + 1, xtr.shape.end());
  const std::int64_t max_label = std::max(s.y[0].max_label, s.y[1].max_label);
  if (s.class_names) {
    info.class_names = *s.class_names;
    if (max_label >= info.num_classes()) {
      return LabelOutOfRange("label " + std::to_string(max_label) + " is not below the " +
                             std::to_string(info.num_classes()) + " class names");
    }
  } else {
    for (std::int64_t c = 0; c <= max_label; ++c) info.class_names.push_back(std::to_string(c));
  }
  if (info.num_classes() < 2) return Invalid("a data set needs at least two classes");
  const std::int64_t mins[2] = {s.limits.min_train_per_class, s.limits.min_test_per_class};
  SplitInfo* splits[2] = {&info.train, &info.test};
  for (int i = 0; i < 2; ++i) {
    splits[i]->count = s.y[i].header->shape[0];
    splits[i]->per_class = s.y[i].per_class;
    splits[i]->per_class.resize(info.class_names.size(), 0);
    for (std::size_t c = 0; c < splits[i]->per_class.size(); ++c) {
      if (splits[i]->per_class[c] < mins[i]) {
        return TooFewSamples(std::string(i == 0 ? "train" : "test") + " has " +
                             std::to_string(splits[i]->per_class[c]) + " samples of class '" +
                             info.class_names[c] + "'; at least " + std::to_string(mins[i]) +
                             " are needed");
      }
    }
  }
  info.scale = info.dtype == DType::kUInt8 ? 1.0 / 255.0 : 1.0;
  const auto& x = s.x[0];
  for (std::size_t c = 0; c < x.sum.size(); ++c) {
    const double n = static_cast<double>(std::max<std::uint64_t>(x.count[c], 1));
    const double mean = x.sum[c] / n;
    const double var = std::max(0.0, x.sumsq[c] / n - mean * mean);
    const double sd = std::sqrt(var);
    info.mean.push_back(mean);
    info.std.push_back(sd > 1e-6 && std::isfinite(sd) ? sd : 1.0);
  }
  return info;
}

namespace {
class Tee : public ArraySink {
 public:
  Tee(ArraySink& a, ArraySink* b) : a_(a), b_(b) {}
  Status Begin(Role r, const ArrayHeader& h) override {
    EP_RETURN_IF_ERROR(a_.Begin(r, h));
    return b_ ? b_->Begin(r, h) : Ok();
  }
  Status Data(std::string_view d) override {
    EP_RETURN_IF_ERROR(a_.Data(d));
    return b_ ? b_->Data(d) : Ok();
  }
  Status End() override {
    EP_RETURN_IF_ERROR(a_.End());
    return b_ ? b_->End() : Ok();
  }

 private:
  ArraySink& a_;
  ArraySink* b_;
};
}  // namespace

Result<DatasetInfo> ValidateDatasetFile(const std::string& path, const ValidationLimits& limits,
                                        ArraySink* also) {
  Validator validator(limits);
  Tee tee(validator, also);
  EP_ASSIGN_OR_RETURN(SourceFormat format, ReadDatasetFile(path, limits.max_decompressed_bytes, tee));
  return validator.Finish(SourceFormatName(format));
}

}  // namespace edgeprune::datasets
