#include "server/datasets/npy.hpp"

#include <charconv>
#include <cstring>
#include <string>

#include "server/datasets/dataset_error.hpp"

namespace edgeprune::datasets {
namespace {

constexpr int kMaxRank = 8;

class DictParser {
 public:
  DictParser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  Result<ArrayHeader> Parse() {
    std::string descr;
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    std::vector<std::int64_t> shape;
    SkipSpace();
    if (!Eat('{')) return Bad("the header is not a dict");
    while (true) {
      SkipSpace();
      if (Eat('}')) break;
      EP_ASSIGN_OR_RETURN(std::string key, String());
      SkipSpace();
      if (!Eat(':')) return Bad("expected ':' after '" + key + "'");
      SkipSpace();
      if (key == "descr" && !have_descr) {
        EP_ASSIGN_OR_RETURN(descr, String());
        have_descr = true;
      } else if (key == "fortran_order" && !have_order) {
        if (Word("True")) fortran = true;
        else if (Word("False")) fortran = false;
        else return Bad("fortran_order is not True or False");
        have_order = true;
      } else if (key == "shape" && !have_shape) {
        EP_ASSIGN_OR_RETURN(shape, Tuple());
        have_shape = true;
      } else {
        return Bad("unexpected or repeated key '" + key + "'");
      }
      SkipSpace();
      if (Eat(',')) continue;
      SkipSpace();
      if (Eat('}')) break;
      return Bad("expected ',' or '}'");
    }
    SkipSpace();
    if (pos_ != s_.size()) return Bad("text after the header dict");
    if (!have_descr || !have_order || !have_shape) {
      return Bad("the header lacks descr, fortran_order or shape");
    }
    EP_ASSIGN_OR_RETURN(ArrayHeader h, ParseNpyDescr(descr, what_));
    if (fortran && shape.size() > 1) {
      return Invalid(what_ + " is stored in Fortran order; save it with np.ascontiguousarray");
    }
    h.shape = std::move(shape);
    if (!h.ByteSize()) return TooLarge(what_ + " has an impossibly large shape");
    return h;
  }

 private:
  Error Bad(const std::string& why) const {
    return Invalid(what_ + ": malformed .npy header (" + why + ")");
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t')) ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  Result<std::string> String() {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return Bad("expected a string");
    const char quote = s_[pos_++];
    const std::size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos || end - pos_ > 64) return Bad("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    if (out.find('\\') != std::string::npos) return Bad("escapes in a string");
    pos_ = end + 1;
    return out;
  }
  Result<std::vector<std::int64_t>> Tuple() {
    std::vector<std::int64_t> dims;
    if (!Eat('(')) return Bad("shape is not a tuple");
    while (true) {
      SkipSpace();
      if (Eat(')')) break;
      std::int64_t v = 0;
      const char* b = s_.data() + pos_;
      const char* e = s_.data() + s_.size();
      auto [p, ec] = std::from_chars(b, e, v);
      if (ec != std::errc() || p == b || v < 0) return Bad("a shape entry is not a count");
      pos_ += static_cast<std::size_t>(p - b);
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 longs
      dims.push_back(v);
      if (dims.size() > kMaxRank) return Bad("more than 8 dimensions");
      SkipSpace();
      if (Eat(',')) continue;
      SkipSpace();
      if (Eat(')')) break;
      return Bad("expected ',' or ')' in shape");
    }
    return dims;
  }

  std::string_view s_;
  const std::string& what_;
  std::size_t pos_ = 0;
};

std::uint32_t Le32(const unsigned char* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

}  // namespace

Result<ArrayHeader> ParseNpyDescr(std::string_view d, const std::string& what) {
  const auto unsupported = [&] {
    return Invalid(what + " has dtype '" + std::string(d.substr(0, 16)) +
                   "'; use uint8, float16 or float32 samples, integer labels, string names");
  };
  if (d.size() < 3) return unsupported();
  const char order = d[0];
  const char kind = d[1];
  std::size_t n = 0;
  const auto rest = d.substr(2);
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
  if (ec != std::errc() || p != rest.data() + rest.size() || n == 0) return unsupported();
  if (order == '>' && n > 1) {
    return Invalid(what + " is big-endian ('" + std::string(d) + "'); save it little-endian");
  }
  if (order != '<' && order != '|' && order != '=' && order != '>') return unsupported();
  ArrayHeader h;
  h.item_size = n;
  if (kind == 'u' || kind == 'i') {
    const bool s = kind == 'i';
    switch (n) {
      case 1: h.dtype = s ? DType::kInt8 : DType::kUInt8; break;
      case 2: h.dtype = s ? DType::kInt16 : DType::kUInt16; break;
      case 4: h.dtype = s ? DType::kInt32 : DType::kUInt32; break;
      case 8: h.dtype = s ? DType::kInt64 : DType::kUInt64; break;
      default: return unsupported();
    }
  } else if (kind == 'f') {
    switch (n) {
      case 2: h.dtype = DType::kFloat16; break;
      case 4: h.dtype = DType::kFloat32; break;
      case 8: h.dtype = DType::kFloat64; break;
      default: return unsupported();
    }
  } else if (kind == 'U' && n <= 1024) {
    h.dtype = DType::kUtf32;
    h.item_size = 4 * n;
  } else if (kind == 'S' && n <= 4096) {
    h.dtype = DType::kBytes;
  } else {
    return unsupported();
  }
  return h;
}

Result<ArrayHeader> ParseNpyDict(std::string_view dict, const std::string& what) {
  return DictParser(dict, what).Parse();
}

Result<ArrayHeader> ReadNpyHeader(ByteStream& in, const std::string& what) {
  unsigned char pre[12];
  EP_RETURN_IF_ERROR(ReadExact(in, reinterpret_cast<char*>(pre), 10, what));
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) return Invalid(what + " is not a .npy file");
  const int major = pre[6];
  std::size_t header_len;
  if (major == 1) {
    header_len = pre[8] | (pre[9] << 8);
  } else if (major == 2 || major == 3) {
    EP_RETURN_IF_ERROR(ReadExact(in, reinterpret_cast<char*>(pre) + 10, 2, what));
    header_len = Le32(pre + 8);
  } else {
    return Invalid(what + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_len > kMaxNpyHeader) return Invalid(what + ": the .npy header is too long");
  std::string dict(header_len, '\0');
  EP_RETURN_IF_ERROR(ReadExact(in, dict.data(), header_len, what));
  // The dict is padded with spaces and ends in '\n'.
  while (!dict.empty() && (dict.back() == '\n' || dict.back() == ' ' || dict.back() == '\0')) {
    dict.pop_back();
  }
  return ParseNpyDict(dict, what);
}

}  // namespace edgeprune::datasets
