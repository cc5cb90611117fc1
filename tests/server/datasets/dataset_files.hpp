#pragma once
// Builds data set files in test code (no Python): .npy arrays, zip archives (stored or
// deflated, with sizes that can be made to lie), ustar tars, gzip, IDX files, and a learnable
// generated data set (each class a fixed random pattern plus noise) of any per-sample shape.
// Shared by the data set, API and end-to-end tests.
//
// Thread-safety: pure functions.

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace edgeprune::testing {

inline std::string NpyShape(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (auto d : shape) s += std::to_string(d) + ", ";
  if (shape.size() > 1) s.resize(s.size() - 2);
  if (shape.size() == 1) s.resize(s.size() - 1);
  return s + ")";
}

// A version 1.0 .npy file.
inline std::string Npy(const std::string& descr, const std::vector<std::int64_t>& shape,
                       const std::string& data) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " +
                     NpyShape(shape) + ", }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>(dict.size() >> 8);
  return out + dict + data;
}

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

inline std::string Deflate(const std::string& data, int wbits = -MAX_WBITS) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
inline std::string Gzip(const std::string& data) { return Deflate(data, 16 + MAX_WBITS); }

struct ZipMember {
  std::string name;
  std::string data;
  bool deflate = false;
  // Overrides of what the headers declare (to build hostile archives); -1 = the truth.
  std::int64_t declared_size = -1;
  std::int64_t declared_crc = -1;
};

inline void Put16(std::string& s, std::uint32_t v) {
  s += static_cast<char>(v & 0xFF);
  s += static_cast<char>((v >> 8) & 0xFF);
}
inline void Put32(std::string& s, std::uint32_t v) {
  Put16(s, v & 0xFFFF);
  Put16(s, v >> 16);
}

inline std::string Zip(const std::vector<ZipMember>& members) {
  std::string out, central;
  for (const auto& m : members) {
    const std::string body = m.deflate ? Deflate(m.data) : m.data;
    const std::uint32_t crc = m.declared_crc >= 0 ? static_cast<std::uint32_t>(m.declared_crc)
        : static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(m.data.data()),
                                           static_cast<uInt>(m.data.size())));
    const std::uint32_t size = m.declared_size >= 0 ? static_cast<std::uint32_t>(m.declared_size)
                                                    : static_cast<std::uint32_t>(m.data.size());
    const std::uint32_t offset = static_cast<std::uint32_t>(out.size());
    const std::uint16_t method = m.deflate ? 8 : 0;
    Put32(out, 0x04034b50); Put16(out, 20); Put16(out, 0); Put16(out, method); Put32(out, 0);
    Put32(out, crc); Put32(out, static_cast<std::uint32_t>(body.size())); Put32(out, size);
    Put16(out, static_cast<std::uint32_t>(m.name.size())); Put16(out, 0);
    out += m.name + body;
    Put32(central, 0x02014b50); Put16(central, 20); Put16(central, 20); Put16(central, 0);
    Put16(central, method); Put32(central, 0); Put32(central, crc);
    Put32(central, static_cast<std::uint32_t>(body.size())); Put32(central, size);
    Put16(central, static_cast<std::uint32_t>(m.name.size())); Put16(central, 0); Put16(central, 0);
    Put16(central, 0); Put16(central, 0); Put32(central, 0); Put32(central, offset);
    central += m.name;
  }
  const std::uint32_t cd_offset = static_cast<std::uint32_t>(out.size());
  out += central;
  Put32(out, 0x06054b50); Put16(out, 0); Put16(out, 0);
  Put16(out, static_cast<std::uint32_t>(members.size()));
  Put16(out, static_cast<std::uint32_t>(members.size()));
  Put32(out, static_cast<std::uint32_t>(central.size())); Put32(out, cd_offset); Put16(out, 0);
  return out;
}

inline std::string Tar(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out;
  for (const auto& [name, data] : files) {
    char h[512] = {};
    std::snprintf(h, 100, "%s", name.c_str());
    std::snprintf(h + 100, 8, "%07o", 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011o", static_cast<unsigned>(data.size()));
    std::snprintf(h + 136, 12, "%011o", 0);
    h[156] = '0';
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    std::memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out.append(h, 512);
    out += data;
    out.append((512 - data.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

inline std::string Idx(const std::vector<std::uint32_t>& dims, const std::string& data) {
  std::string out("\0\0\x08", 3);
  out += static_cast<char>(dims.size());
  for (auto d : dims) {
    out += static_cast<char>(d >> 24);
    out += static_cast<char>((d >> 16) & 0xFF);
    out += static_cast<char>((d >> 8) & 0xFF);
    out += static_cast<char>(d & 0xFF);
  }
  return out + data;
}

// A learnable data set: class k's samples are pattern_k + noise, patterns fixed by the seed.
struct GeneratedSpec {
  std::vector<std::int64_t> sample_shape{1, 8, 8};
  int classes = 3;
  int train_per_class = 20;
  int test_per_class = 5;
  std::string dtype = "|u1";  // "|u1", "<f4" or "<f2"
  std::vector<std::string> class_names;  // stored as '<U n' when given
  std::string layout;  // stored as a 0-d '<U n' array (np.savez(..., layout='HW')) when given
  std::uint32_t seed = 7;
  double noise = 0.15;
};

struct GeneratedArrays {
  std::string x_train, y_train, x_test, y_test;  // raw element bytes
  std::int64_t n_train = 0, n_test = 0;
};

inline std::uint16_t FloatToHalf(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, 4);
  const std::uint32_t sign = (b >> 16) & 0x8000u;
  const int exp = static_cast<int>((b >> 23) & 0xFF) - 127 + 15;
  if (exp <= 0) return static_cast<std::uint16_t>(sign);
  if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7C00u);
  return static_cast<std::uint16_t>(sign | (exp << 10) | ((b >> 13) & 0x3FFu));
}

inline GeneratedArrays Generate(const GeneratedSpec& spec) {
  std::int64_t elems = 1;
  for (auto d : spec.sample_shape) elems *= d;
  std::mt19937 rng(spec.seed);
  std::uniform_real_distribution<float> uni(0.1f, 0.9f);
  std::normal_distribution<float> noise(0.0f, static_cast<float>(spec.noise));
  std::vector<std::vector<float>> patterns(spec.classes, std::vector<float>(elems));
  for (auto& p : patterns) for (auto& v : p) v = uni(rng);
  GeneratedArrays out;
  auto emit = [&](std::string& x, std::string& y, int per_class) {
    for (int i = 0; i < per_class; ++i) {
      for (int k = 0; k < spec.classes; ++k) {
        for (std::int64_t e = 0; e < elems; ++e) {
          float v = std::clamp(patterns[k][e] + noise(rng), 0.0f, 1.0f);
          if (spec.dtype == "|u1") {
            x += static_cast<char>(static_cast<unsigned char>(v * 255.0f + 0.5f));
          } else if (spec.dtype == "<f2") {
            const std::uint16_t h = FloatToHalf(v);
            x.append(reinterpret_cast<const char*>(&h), 2);
          } else {
            x.append(reinterpret_cast<const char*>(&v), 4);
          }
        }
        const std::int64_t label = k;
        y.append(reinterpret_cast<const char*>(&label), 8);
      }
    }
  };
  emit(out.x_train, out.y_train, spec.train_per_class);
  emit(out.x_test, out.y_test, spec.test_per_class);
  out.n_train = static_cast<std::int64_t>(spec.train_per_class) * spec.classes;
  out.n_test = static_cast<std::int64_t>(spec.test_per_class) * spec.classes;
  return out;
}

inline std::string Utf32Names(const std::vector<std::string>& names, std::size_t width) {
  std::string out;
  for (const auto& n : names) {  // ASCII names only
    for (std::size_t i = 0; i < width; ++i) {
      const std::uint32_t cp = i < n.size() ? static_cast<unsigned char>(n[i]) : 0;
      out.append(reinterpret_cast<const char*>(&cp), 4);
    }
  }
  return out;
}

// One string as NumPy saves a str: a 0-d '<U n' array.
inline std::string NpyString(const std::string& value) {
  const std::size_t width = std::max<std::size_t>(value.size(), 1);
  return Npy("<U" + std::to_string(width), {}, Utf32Names({value}, width));
}

// The members of an .npz for spec (x_train.npy, y_train.npy, x_test.npy, y_test.npy,
// class_names.npy when names are given, then layout.npy when a layout is: after the samples, as
// np.savez writes keyword arguments in order); callers may edit them before zipping.
inline std::vector<ZipMember> NpzMembers(const GeneratedSpec& spec, bool deflate = false) {
  const auto a = Generate(spec);
  auto shape = [&](std::int64_t n) {
    std::vector<std::int64_t> s{n};
    s.insert(s.end(), spec.sample_shape.begin(), spec.sample_shape.end());
    return s;
  };
  std::vector<ZipMember> m{
      {"x_train.npy", Npy(spec.dtype, shape(a.n_train), a.x_train), deflate},
      {"y_train.npy", Npy("<i8", {a.n_train}, a.y_train), deflate},
      {"x_test.npy", Npy(spec.dtype, shape(a.n_test), a.x_test), deflate},
      {"y_test.npy", Npy("<i8", {a.n_test}, a.y_test), deflate},
  };
  if (!spec.class_names.empty()) {
    std::size_t width = 1;
    for (const auto& n : spec.class_names) width = std::max(width, n.size());
    m.push_back({"class_names.npy",
                 Npy("<U" + std::to_string(width),
                     {static_cast<std::int64_t>(spec.class_names.size())},
                     Utf32Names(spec.class_names, width)),
                 deflate});
  }
  if (!spec.layout.empty()) m.push_back({"layout.npy", NpyString(spec.layout), deflate});
  return m;
}

inline std::string Npz(const GeneratedSpec& spec, bool deflate = false) {
  return Zip(NpzMembers(spec, deflate));
}

}  // namespace edgeprune::testing
