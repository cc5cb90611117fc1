#pragma once
// Reads a data set file in any accepted format and hands its arrays to an ArraySink:
//   - a NumPy .npz (zip of .npy files): x_train, y_train, x_test, y_test, optional class_names
//     and optional layout, one string naming a sample's axes: 'CHW' (images), 'HW' (grey images,
//     handed on as [N, 1, H, W] like IDX images), 'CL' (signals) or 'F' (feature vectors).
//     Without it the rank decides: [N, C, H, W] images, [N, C, L] signals, [N, F] features.
//     A layout that is not one of those strings is dataset_invalid; samples of another rank
//     than it names, dataset_shape_mismatch. Other arrays are ignored;
//   - IDX pairs (raw or gzip) in a zip, a tar (optionally gzip-compressed as a whole) or a
//     directory: train-images*, train-labels*, t10k-images* or test-images*, t10k-labels* or
//     test-labels* (the MNIST names), optional class_names.txt (one name a line).
//   - an image folder in a tar (optionally gzip-compressed): shape.txt and
//     train|test/<class>/<PNG or JPEG> (image_folder.hpp).
// The format is decided by the content, never the name. Everything read is bounded by
// max_decompressed_bytes (counted across the whole archive) before or while it is inflated.
//
// Thread-safety: free function; the sink is used by one thread.

#include <cstdint>
#include <string>

#include "edgeprune/common/result.hpp"
#include "server/datasets/array.hpp"

namespace edgeprune::datasets {

enum class SourceFormat { kNpz, kIdxZip, kIdxTar, kIdxDirectory, kImageFolderTar };
// "npz", "idx-zip", "idx-tar", "idx-dir", "image-tar"
const char* SourceFormatName(SourceFormat format);

Result<SourceFormat> ReadDatasetFile(const std::string& path, std::uint64_t max_decompressed_bytes,
                                     ArraySink& sink);

}  // namespace edgeprune::datasets
