#!/usr/bin/env bash
# Makes a development PKI for edgeprune with the openssl CLI:
#   ca.pem/ca.key                  dev CA that signs the server certificate (agents trust ca.pem)
#   server.pem/server.key          server certificate, SAN DNS:localhost, IP:127.0.0.1 (+ --server-name)
#   device-ca.pem/device-ca.key    CA that signs the agents' client (device) certificates
#   signing.key/signing.pub        Ed25519 key pair that signs model variants
# Private keys are mode 0600. Idempotent: files that exist are kept (a server certificate is
# remade only when the CA was); --force remakes everything. Not for production use.
#
# Usage: make-dev-pki.sh [--force] [--server-name DNS]... [--days N] <out-dir>
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

force=0
days=825
server_names=()
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --server-name)
      [[ $# -ge 2 && -n "$2" ]] || { echo "make-dev-pki: --server-name needs a DNS name" >&2; exit 2; }
      [[ "$2" =~ ^[A-Za-z0-9.-]+$ ]] || { echo "make-dev-pki: '$2' is not a DNS name" >&2; exit 2; }
      server_names+=("$2"); shift ;;
    --days)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "make-dev-pki: --days needs a positive number" >&2; exit 2; }
      days="$2"; shift ;;
    -h|--help) usage 0 ;;
    -*) echo "make-dev-pki: unknown option '$1'" >&2; usage 2 ;;
    *)
      [[ -z "$out" ]] || { echo "make-dev-pki: only one output directory, got '$out' and '$1'" >&2; exit 2; }
      out="$1" ;;
  esac
  shift
done
[[ -n "$out" ]] || { echo "make-dev-pki: missing <out-dir>" >&2; usage 2; }
command -v openssl >/dev/null || { echo "make-dev-pki: openssl not found (deploy/bootstrap.sh installs it)" >&2; exit 1; }

mkdir -p "$out"
cd "$out"
umask 077
files=(ca.pem ca.key server.pem server.key device-ca.pem device-ca.key signing.key signing.pub)
if [[ $force -eq 1 ]]; then
  rm -f "${files[@]}"
fi

made=()
have() { for f in "$@"; do [[ -s "$f" ]] || return 1; done; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# make_ca <name> <common name>
make_ca() {
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -days "$days" -subj "/O=edgeprune dev/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$1.key" -out "$1.pem" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  chmod 0600 "$1.key"
  chmod 0644 "$1.pem"
  made+=("$1.pem" "$1.key")
}

made_ca=0
if ! have ca.pem ca.key; then
  make_ca ca "edgeprune dev CA"
  made_ca=1
fi

if [[ $made_ca -eq 1 ]] || ! have server.pem server.key; then
  san="DNS:localhost,IP:127.0.0.1"
  for n in "${server_names[@]}"; do san+=",DNS:$n"; done
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -subj "/O=edgeprune dev/CN=localhost" -keyout server.key -out "$tmp/server.csr" 2>"$tmp/err" \
    || { cat "$tmp/err" >&2; exit 1; }
  cat >"$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyAgreement
extendedKeyUsage=serverAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EXT
  openssl x509 -req -in "$tmp/server.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days "$days" -sha256 -extfile "$tmp/server.ext" -out server.pem \
    2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  chmod 0600 server.key
  chmod 0644 server.pem
  made+=(server.pem server.key)
fi

if ! have device-ca.pem device-ca.key; then
  make_ca device-ca "edgeprune dev device CA"
fi

if ! have signing.key signing.pub; then
  openssl genpkey -algorithm ed25519 -out signing.key 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  openssl pkey -in signing.key -pubout -out signing.pub 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  chmod 0600 signing.key
  chmod 0644 signing.pub
  made+=(signing.key signing.pub)
fi

if [[ ${#made[@]} -eq 0 ]]; then
  echo "make-dev-pki: $out already complete, nothing made (use --force to remake)"
else
  echo "make-dev-pki: made in $out: ${made[*]}"
fi
