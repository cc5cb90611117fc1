#pragma once
// Reader for the IDX format of (Fashion-)MNIST, gzip-compressed or raw: a 4-byte magic
// (0, 0, element type, rank), `rank` big-endian uint32 dimensions, then the elements.
// Only unsigned-byte elements (type 0x08) are accepted: that is what image/label sets use.
// LibTorch-free so tools and tests can read IDX files without it.
//
// Thread-safety: free functions without shared state.

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::models {

struct IdxArray {
  std::vector<std::int64_t> dims;  // e.g. {60000, 28, 28} for images, {60000} for labels
  std::vector<std::uint8_t> data;  // row-major, product(dims) elements

  std::int64_t count() const { return dims.empty() ? 0 : dims.front(); }
};

// Reads an IDX file; gzip is detected from the content, not the name. Errors (code
// "invalid_idx" or "io_error") name the file and what is wrong: missing, wrong magic,
// unsupported element type, truncated, trailing bytes.
Result<IdxArray> ReadIdx(const std::string& path);

// Writes raw (uncompressed) IDX of unsigned bytes; used by tests and tools to produce data sets.
Status WriteIdx(const std::string& path, const IdxArray& array);

}  // namespace edgeprune::models
