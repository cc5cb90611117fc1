#pragma once
// The image-folder form of a data set (the ImageFolder convention), as a tar (plain or gzip):
//   shape.txt                  the declared sample shape "C,H,W" (C = 1 grey or 3 RGB)
//   train/<class>/<name>       PNG or JPEG files, any size: each is scaled to cover H × W and
//   test/<class>/<name>        centre-cropped (image_decode.hpp)
// Classes are the directory names under train/, sorted; every test class must be one of them.
// Members may start with "./"; other files (a README, ...) are ignored. The arrays go to the sink
// like the other formats': x_train/x_test uint8 [N, C, H, W], y_train/y_test int64, class_names.
//
// A tar is read more than once (open_stream gives a fresh stream each time): names and shape.txt
// first, then the train images, then the test images, because a sink takes one whole array at a
// time and the counts must be known before its first byte.
//
// Thread-safety: free functions.

#include <cstdint>
#include <functional>
#include <string_view>

#include "edgeprune/common/result.hpp"
#include "server/datasets/array.hpp"
#include "server/datasets/byte_stream.hpp"

namespace edgeprune::datasets {

// Runs `use` on a fresh stream of the whole tar.
using TarOpener = std::function<Status(const std::function<Status(ByteStream&)>& use)>;

// Whether a tar member name belongs to an image folder ("shape.txt", "train/…", "test/…").
bool IsImageFolderMember(std::string_view name);

// max_bytes bounds the decoded samples (and each image file) as it bounds other formats.
Status ReadImageFolderTar(const TarOpener& open_stream, std::uint64_t max_bytes, ArraySink& sink);

}  // namespace edgeprune::datasets
