#include "edgeprune/common/shape.hpp"

#include <charconv>

namespace edgeprune {

Result<std::vector<std::int64_t>> ParseShape(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_shape",
                     "shape '" + std::string(text.substr(0, 64)) + "' " + why);
  };
  std::vector<std::int64_t> shape;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find_first_of(",xX", start);
    const std::string_view item = text.substr(start, end == std::string_view::npos ? end : end - start);
    // from_chars alone would take "+5"'s sign off or "5e3"'s leading 5: require the whole item.
    std::int64_t v = 0;
    auto [stop, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || stop != item.data() + item.size() ||
        item.front() < '0' || item.front() > '9') {
      return bad("is not a comma-separated list of sizes");
    }
    if (v < 1 || v > kMaxShapeDim) {
      return bad("has a size out of 1.." + std::to_string(kMaxShapeDim));
    }
    shape.push_back(v);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return shape;
}

}  // namespace edgeprune
