#pragma once
// Decodes one PNG or JPEG file (told apart by its first bytes, never its name) with Debian's
// libpng and libjpeg-turbo into `channels` (1: grey, 3: RGB) 8-bit planes, resized to
// height × width: the image is scaled so that it covers the target and the overflow is cropped
// evenly from both sides (the "resize then centre-crop" of image classification pipelines), then
// sampled bilinearly. Output is channel-first, [C, H, W], as the data set's other formats are.
//
// Refusals ("dataset_invalid" naming `what`): not a PNG or JPEG, a damaged file; and
// "dataset_too_large" for an image over kMaxImagePixels before it is decoded (a decompression
// bomb declares its size in its header).
//
// Thread-safety: free functions; libpng and libjpeg state is per call.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::datasets {

inline constexpr std::uint64_t kMaxImagePixels = 64ull * 1024 * 1024;

Result<std::vector<std::uint8_t>> DecodeImage(std::string_view bytes, int channels, int height,
                                              int width, const std::string& what);

}  // namespace edgeprune::datasets
