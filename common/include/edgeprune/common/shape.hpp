#pragma once
// The one parser of tensor shapes written as text ("1,28,28" or "1x28x28"), shared by the upload
// API, the model CLI commands and the pruning CLI, so a shape one accepts the others accept too.
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune {

inline constexpr std::int64_t kMaxShapeDim = 65536;

// Sizes in 1..kMaxShapeDim separated by ',', 'x' or 'X'; decimal digits only (no sign, space,
// exponent or empty item). "invalid_shape" (kInvalidArgument) naming the text otherwise.
Result<std::vector<std::int64_t>> ParseShape(std::string_view text);

}  // namespace edgeprune
