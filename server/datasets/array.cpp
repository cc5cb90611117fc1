#include "server/datasets/array.hpp"

#include <bit>
#include <cstring>

namespace edgeprune::datasets {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kXTrain: return "x_train";
    case Role::kYTrain: return "y_train";
    case Role::kXTest: return "x_test";
    case Role::kYTest: return "y_test";
    case Role::kClassNames: return "class_names";
  }
  return "?";
}

std::optional<Role> RoleFromName(std::string_view name) {
  for (Role r : {Role::kXTrain, Role::kYTrain, Role::kXTest, Role::kYTest, Role::kClassNames}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUInt16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kUInt32: return "uint32";
    case DType::kInt32: return "int32";
    case DType::kUInt64: return "uint64";
    case DType::kInt64: return "int64";
    case DType::kFloat16: return "float16";
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kUtf32: return "unicode";
    case DType::kBytes: return "bytes";
  }
  return "?";
}

bool IsInteger(DType d) {
  return d == DType::kUInt8 || d == DType::kInt8 || d == DType::kUInt16 || d == DType::kInt16 ||
         d == DType::kUInt32 || d == DType::kInt32 || d == DType::kUInt64 || d == DType::kInt64;
}

bool IsFloat(DType d) { return d == DType::kFloat16 || d == DType::kFloat32 || d == DType::kFloat64; }

std::optional<std::uint64_t> ArrayHeader::ByteSize() const {
  constexpr std::uint64_t kLimit = 1ull << 62;
  std::uint64_t total = item_size;
  for (auto d : shape) {
    if (d < 0) return std::nullopt;
    if (d != 0 && total > kLimit / static_cast<std::uint64_t>(d)) return std::nullopt;
    total *= static_cast<std::uint64_t>(d);
  }
  return total;
}

float HalfToFloat(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf or NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // ±0
  } else {  // subnormal: normalize
    exp = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

void ToFloat32(const ArrayHeader& h, const char* p, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i, p += h.item_size) {
    if (h.dtype == DType::kUInt8) {
      out[i] = static_cast<float>(static_cast<unsigned char>(*p)) / 255.0f;
    } else if (h.dtype == DType::kFloat16) {
      std::uint16_t b;
      std::memcpy(&b, p, 2);
      out[i] = HalfToFloat(b);
    } else {
      std::memcpy(&out[i], p, 4);
    }
  }
}

void ToInt64(const ArrayHeader& h, const char* p, std::size_t n, std::int64_t* out) {
  for (std::size_t i = 0; i < n; ++i, p += h.item_size) {
    std::int64_t v = 0;
    switch (h.dtype) {
      case DType::kUInt8: v = static_cast<unsigned char>(*p); break;
      case DType::kInt8: v = static_cast<signed char>(*p); break;
      case DType::kUInt16: { std::uint16_t t; std::memcpy(&t, p, 2); v = t; break; }
      case DType::kInt16: { std::int16_t t; std::memcpy(&t, p, 2); v = t; break; }
      case DType::kUInt32: { std::uint32_t t; std::memcpy(&t, p, 4); v = t; break; }
      case DType::kInt32: { std::int32_t t; std::memcpy(&t, p, 4); v = t; break; }
      default: std::memcpy(&v, p, 8); break;
    }
    out[i] = v;
  }
}

}  // namespace edgeprune::datasets
