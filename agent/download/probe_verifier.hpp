#pragma once
// Checks a variant's shipped probe set (wire/probe_file.hpp) against its verified manifest before
// the runtime sees a single sample: the bytes must hash to the signed digest and size, decode,
// hold the number of samples the manifest names, have exactly the variant's per-sample shape
// (input_shape without its batch axis) and labels below num_classes.
//
// Errors: "probe_size_mismatch" / "probe_digest_mismatch" (kPermissionDenied, Retry::kLimited:
// damaged on the way or on the server's disk, a new download may fix it); "probe_invalid" and
// "probe_shape_mismatch" (permanent: the bytes match the signature, so the server will send the
// same ones again); "probe_unreadable" (kIo) for a stored file that cannot be read.
//
// Thread-safety: free functions.

#include <memory>
#include <string>
#include <string_view>

#include "agent/runtime/backend.hpp"
#include "agent/runtime/probe_set.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::agent {

// The manifest must carry a probe (manifest.probe).
Result<std::shared_ptr<const ProbeSet>> VerifyProbe(const wire::VariantManifest& manifest,
                                                    std::string_view bytes);
// The same, on a file (a stored install's probe set).
Result<std::shared_ptr<const ProbeSet>> VerifyProbeFile(const wire::VariantManifest& manifest,
                                                        const std::string& path);

}  // namespace edgeprune::agent
