#pragma once
// The NumPy .npy header (format versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY", a version, a
// little-endian header length and a Python dict literal
//   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
// parsed here without Python: only that grammar, only the dtypes a data set uses (integers,
// float16/32/64, fixed-width strings), little-endian or byte-sized. Object arrays (pickles) and
// big-endian data are refused.
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string_view>

#include "edgeprune/common/result.hpp"
#include "server/datasets/array.hpp"
#include "server/datasets/byte_stream.hpp"

namespace edgeprune::datasets {

inline constexpr std::size_t kMaxNpyHeader = 64 * 1024;

// Reads the header from `in` (leaving it at the first data byte). dataset_invalid naming `what`.
Result<ArrayHeader> ReadNpyHeader(ByteStream& in, const std::string& what);
// The dict literal alone (exposed for tests and the fuzz target).
Result<ArrayHeader> ParseNpyDict(std::string_view dict, const std::string& what);
// The descr string alone: '<f4', '|u1', '<U12', ...
Result<ArrayHeader> ParseNpyDescr(std::string_view descr, const std::string& what);

}  // namespace edgeprune::datasets
