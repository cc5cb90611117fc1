#pragma once
// What the archive readers hand over: named arrays (x_train, y_train, x_test, y_test,
// class_names) as a header and their bytes in chunks, little-endian, row-major. Readers of every
// format (.npz, IDX in a tar or zip, an IDX directory) feed the same ArraySink, so the validator
// and the normalized writer never know which format the operator sent.
//
// Thread-safety: none; a sink belongs to one reader.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::datasets {

enum class Role { kXTrain, kYTrain, kXTest, kYTest, kClassNames };
const char* RoleName(Role role);  // "x_train", ...
std::optional<Role> RoleFromName(std::string_view name);

enum class DType {
  kUInt8, kInt8, kUInt16, kInt16, kUInt32, kInt32, kUInt64, kInt64,  // integers
  kFloat16, kFloat32, kFloat64,                                       // floats
  kUtf32, kBytes,  // fixed-width strings ('<U n', '|S n'): class names only
};
const char* DTypeName(DType dtype);  // "uint8", "float32", ...
bool IsInteger(DType dtype);
bool IsFloat(DType dtype);

struct ArrayHeader {
  DType dtype = DType::kUInt8;
  std::size_t item_size = 1;          // bytes per element (4·n for '<U n')
  std::vector<std::int64_t> shape;    // shape[0] is the sample count (or the number of names)

  // product(shape) · item_size, or nullopt on overflow past 2^62.
  std::optional<std::uint64_t> ByteSize() const;
};

class ArraySink {
 public:
  virtual ~ArraySink() = default;
  virtual Status Begin(Role role, const ArrayHeader& header) = 0;
  // The array's bytes in order, in chunks of any size; their total is header.ByteSize().
  virtual Status Data(std::string_view bytes) = 0;
  virtual Status End() = 0;
};

// One float16 (IEEE 754 binary16, little-endian bits) as a float.
float HalfToFloat(std::uint16_t bits);

// n elements of `header`'s type at p (little-endian) as float32 samples, uint8 scaled by 1/255;
// and as int64 labels (integer types only; uint64 above 2^63 wraps: validate first).
void ToFloat32(const ArrayHeader& header, const char* p, std::size_t n, float* out);
void ToInt64(const ArrayHeader& header, const char* p, std::size_t n, std::int64_t* out);

}  // namespace edgeprune::datasets
