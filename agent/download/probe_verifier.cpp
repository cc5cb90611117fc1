#include "agent/download/probe_verifier.hpp"

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/wire/probe_file.hpp"

namespace edgeprune::agent {

Result<std::shared_ptr<const ProbeSet>> VerifyProbe(const wire::VariantManifest& m,
                                                    std::string_view bytes) {
  if (!m.probe) {
    return PermanentError(ErrorKind::kInvalidArgument, "probe_invalid",
                          "variant " + m.variant_id + " ships no probe set");
  }
  const auto& want = *m.probe;
  if (static_cast<std::int64_t>(bytes.size()) != want.size_bytes) {
    return MakeError(ErrorKind::kPermissionDenied, "probe_size_mismatch",
                     "the probe set of variant " + m.variant_id + " is " +
                         std::to_string(bytes.size()) + " bytes, the manifest says " +
                         std::to_string(want.size_bytes),
                     Retry::kLimited);
  }
  if (const auto digest = crypto::Sha256Hex(bytes); digest != want.sha256) {
    return MakeError(ErrorKind::kPermissionDenied, "probe_digest_mismatch",
                     "the probe set of variant " + m.variant_id + " has SHA-256 " + digest +
                         ", the manifest says " + want.sha256,
                     Retry::kLimited);
  }
  // From here on the bytes are the signed ones: every refusal is permanent.
  auto parsed = wire::ParseProbeFile(bytes);
  if (!parsed.ok()) return parsed.error().WithRetry(Retry::kPermanent);
  auto mismatch = [&](const std::string& why) {
    return PermanentError(ErrorKind::kFailedPrecondition, "probe_shape_mismatch",
                          "the probe set of variant " + m.variant_id + " " + why);
  };
  std::vector<std::int64_t> batch1{1};
  batch1.insert(batch1.end(), parsed->sample_shape.begin(), parsed->sample_shape.end());
  if (batch1 != m.input_shape) {
    return mismatch("holds samples of shape " + ShapeText(batch1) + ", the variant takes " +
                    ShapeText(m.input_shape));
  }
  if (static_cast<std::int64_t>(parsed->labels.size()) != want.samples) {
    return mismatch("holds " + std::to_string(parsed->labels.size()) +
                    " samples, the manifest says " + std::to_string(want.samples));
  }
  for (auto label : parsed->labels) {
    if (label >= m.num_classes) {
      return mismatch("holds label " + std::to_string(label) + " but the variant has " +
                      std::to_string(m.num_classes) + " classes");
    }
  }
  auto set = std::make_shared<ProbeSet>();
  set->sample_shape = std::move(batch1);
  set->labels = std::move(parsed->labels);
  set->data = std::move(parsed->data);
  return std::shared_ptr<const ProbeSet>(std::move(set));
}

Result<std::shared_ptr<const ProbeSet>> VerifyProbeFile(const wire::VariantManifest& m,
                                                        const std::string& path) {
  auto bytes = fs::ReadFile(path, static_cast<std::size_t>(wire::kMaxProbeBytes));
  if (!bytes.ok()) {
    return MakeError(ErrorKind::kIo, "probe_unreadable", path + ": " + bytes.error().message);
  }
  return VerifyProbe(m, *bytes);
}

}  // namespace edgeprune::agent
