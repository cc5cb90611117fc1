#pragma once
// The codes a data set is refused with. Every one is permanent (the same bytes fail the same way)
// and, but for an upload over the configured cap (413), a 400 naming what is wrong.
//
// Thread-safety: pure functions.

#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::datasets {

// Not an archive we read, a damaged or encrypted one, a missing or unsupported array.
inline Error Invalid(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_invalid", std::move(message));
}
// More bytes (compressed, decompressed or as samples) than the limits allow: a zip bomb too.
inline Error TooLarge(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_too_large", std::move(message));
}
// x_train and y_train (or the test pair) hold different numbers of samples.
inline Error CountMismatch(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_count_mismatch", std::move(message));
}
// Train and test samples of different shapes or element types, or an unusable shape.
inline Error ShapeMismatch(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_shape_mismatch", std::move(message));
}
// A label below zero or not below the number of classes.
inline Error LabelOutOfRange(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_label_out_of_range",
                        std::move(message));
}
// A NaN or an infinity among float samples.
inline Error NotFinite(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_not_finite", std::move(message));
}
// A class with fewer samples than the limits ask for (training or evaluation cannot use it).
inline Error TooFewSamples(std::string message) {
  return PermanentError(ErrorKind::kInvalidArgument, "dataset_too_few_samples",
                        std::move(message));
}

}  // namespace edgeprune::datasets
