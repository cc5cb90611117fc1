#!/usr/bin/env bash
# Installs every Debian 12 package edgeprune needs to build, test and run.
# Idempotent: packages already present are reported and skipped.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  # HTTP/TLS, JSON
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev libssl-dev openssl
  # store, logging, config, CLI
  libsqlite3-dev sqlite3 libpq-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev zlib1g-dev
  # image-folder data sets: PNG and JPEG decoding
  libpng-dev libjpeg62-turbo-dev
  # models: LibTorch (CPU) and a fast BLAS for it (reference BLAS trains ~2x slower)
  libtorch-dev libopenblas0-openmp
  # the model worker's sandbox (seccomp-bpf)
  libseccomp-dev
  # metrics
  prometheus-cpp-dev
  # tests
  # (prometheus ships promtool: the alert rules are unit-tested with it, tests/deploy/)
  libgtest-dev libgmock-dev googletest prometheus curl procps
  # the store suites also run on PostgreSQL, started by the tests themselves (initdb, pg_ctl)
  postgresql-15
  # fuzz targets (tests/fuzz/): clang with its libFuzzer and sanitizer runtimes
  clang libclang-rt-14-dev
  # embedded default data set
  dataset-fashion-mnist
  # quickstart's test-set client (standard library only); PyTorch for the tests that open our
  # TorchScript in Python (they skip without it)
  python3 python3-torch
  # the API contract's checks (tools/openapi/check_openapi.py): JSON Schema 2020-12 validation;
  # the Kubernetes manifests' check (tools/k8s/check_manifests.py): YAML
  python3-jsonschema python3-yaml
  # the replicas test (tests/deploy/replicas_test.sh): two servers behind HAProxy in TLS passthrough
  haproxy
  # the Debian packages' checks (tests/deploy/packages_test.sh): lintian; dpkg-shlibdeps comes
  # with dpkg-dev (build-essential)
  lintian dpkg-dev
)

if [[ "${1:-}" == "--bench" ]]; then
  # benchmarks only: load generator, baseline web server
  PACKAGES+=(wrk nginx-light)
  # tests/bench/dataset_upload.sh writes its 1 GiB .npz with NumPy
  PACKAGES+=(python3-numpy)
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    :
  else
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "bootstrap: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "bootstrap: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
