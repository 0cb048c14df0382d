#!/usr/bin/env bash
# A private CA for a closed network, and a server certificate from it, with Debian's openssl.
#
#   scripts/make-ca.sh [--days N] [--ca-days N] <out-dir> <dns-name-or-ip>...
#
# Writes into <out-dir>:
#   ca.key, ca.crt          the CA (made once; reused when both are there). ca.crt is what boards
#                           and tablets install as a trusted CA (docs/tls.md); ca.key stays here.
#   server.key, server.crt  a new key and certificate for the names and addresses given (every one
#                           goes into subjectAltName: DNS: for names, IP: for addresses), serverAuth,
#                           valid --days (default 365, at most 397: browsers' bound for public
#                           certificates, inside Apple's 825 days for any TLS certificate); server.crt
#                           holds the full chain, server first then the CA.
# Keys are mode 0600. Point http.tls.certFile / keyFile at server.crt / server.key; running this
# again renews the server certificate with the same CA (then SIGHUP lessoncast).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat >&2 <<'EOF'
usage: make-ca.sh [--days N] [--ca-days N] <out-dir> <dns-name-or-ip>...
  --days N     validity of the server certificate in days (1-397, default 365)
  --ca-days N  validity of a new CA in days (default 3650; an existing CA is reused as it is)
EOF
  exit 64
}

days=365
ca_days=3650
while [ $# -gt 0 ]; do
  case "$1" in
    --days) [ $# -ge 2 ] || usage; days="$2"; shift 2 ;;
    --days=*) days="${1#*=}"; shift ;;
    --ca-days) [ $# -ge 2 ] || usage; ca_days="$2"; shift 2 ;;
    --ca-days=*) ca_days="${1#*=}"; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) log "unknown option: $1"; usage ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
out="$1"
shift

[[ "$days" =~ ^[0-9]+$ ]] && [ "$days" -ge 1 ] && [ "$days" -le 397 ] ||
  die "--days must be a whole number from 1 to 397 (the longest life browsers accept of a public server certificate): got \"$days\""
[[ "$ca_days" =~ ^[0-9]+$ ]] && [ "$ca_days" -ge "$days" ] && [ "$ca_days" -le 9125 ] ||
  die "--ca-days must be a whole number from --days ($days) to 9125: got \"$ca_days\""
command -v openssl >/dev/null 2>&1 || die "openssl not found: apt-get install openssl (scripts/setup.sh installs it)"

# Each name: an IPv4 or IPv6 address becomes IP:, a DNS name (a leading "*." allowed) DNS:.
sans=()
for name in "$@"; do
  if [[ "$name" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || [[ "$name" == *:* && "$name" =~ ^[0-9A-Fa-f:.]+$ ]]; then
    sans+=("IP:$name")
  elif [[ "$name" =~ ^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] && [ ${#name} -le 253 ]; then
    sans+=("DNS:$name")
  else
    die "\"$name\" is neither a DNS name nor an IP address"
  fi
done
san_list="$(IFS=,; printf '%s' "${sans[*]}")"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "$out/.make-ca.XXXXXX")"
trap 'rm -rf "$work"' EXIT
umask 077

cat >"$work/openssl.cnf" <<EOF
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ ca_ext ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san_list
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

# A random positive serial of 16 bytes (the top bit cleared).
serial() { printf '0x%x%s' $(( 0x$(openssl rand -hex 1) & 0x7f )) "$(openssl rand -hex 15)"; }

if [ -f "$out/ca.key" ] && [ -f "$out/ca.crt" ]; then
  openssl x509 -in "$out/ca.crt" -noout 2>/dev/null || die "$out/ca.crt is not a PEM certificate"
  if ! openssl x509 -in "$out/ca.crt" -noout -checkend $(( days * 86400 )) >/dev/null; then
    die "the CA in $out/ca.crt expires within $days days, before the server certificate would: move ca.key and ca.crt away to make a new CA (and install the new ca.crt on every device)"
  fi
  [ "$(openssl pkey -in "$out/ca.key" -pubout 2>/dev/null)" = "$(openssl x509 -in "$out/ca.crt" -noout -pubkey)" ] ||
    die "$out/ca.key is not the key of $out/ca.crt"
  log "reusing the CA in $out/ca.crt"
elif [ -e "$out/ca.key" ] || [ -e "$out/ca.crt" ]; then
  die "$out holds only one of ca.key and ca.crt: restore the other, or move it away to make a new CA"
else
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" 2>/dev/null
  openssl req -new -x509 -config "$work/openssl.cnf" -extensions ca_ext -key "$work/ca.key" -sha256 \
    -days "$ca_days" -set_serial "$(serial)" -subj "/O=lessoncast/CN=lessoncast private CA $(hostname) $(date -u +%Y-%m-%d)" \
    -out "$work/ca.crt"
  chmod 600 "$work/ca.key"
  chmod 644 "$work/ca.crt"
  mv "$work/ca.key" "$out/ca.key"
  mv "$work/ca.crt" "$out/ca.crt"
  log "made a new CA: $out/ca.crt (install it on the devices, docs/tls.md); keep $out/ca.key private"
fi

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key" 2>/dev/null
openssl req -new -config "$work/openssl.cnf" -key "$work/server.key" -subj "/O=lessoncast/CN=$1" -out "$work/server.csr"
openssl x509 -req -in "$work/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -set_serial "$(serial)" -sha256 \
  -days "$days" -extfile "$work/openssl.cnf" -extensions server_ext -out "$work/leaf.crt" 2>/dev/null
cat "$work/leaf.crt" "$out/ca.crt" >"$work/server.crt"
openssl verify -CAfile "$out/ca.crt" -purpose sslserver "$work/server.crt" >/dev/null ||
  die "the new server certificate does not verify against $out/ca.crt"
chmod 600 "$work/server.key"
chmod 644 "$work/server.crt"
# Key first, then certificate: a reload that lands in between finds them mismatched and keeps the old pair.
mv "$work/server.key" "$out/server.key"
mv "$work/server.crt" "$out/server.crt"

log "server certificate: $out/server.crt (key $out/server.key) for $san_list"
log "  valid until $(openssl x509 -in "$out/server.crt" -noout -enddate | cut -d= -f2)"
log "  CA fingerprint (compare on each device): $(openssl x509 -in "$out/ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)"
log "  set http.tls.certFile=$out/server.crt and http.tls.keyFile=$out/server.key; a running lessoncast takes a renewal on SIGHUP"
