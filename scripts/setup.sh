#!/usr/bin/env bash
# Installs everything lessoncast needs on a Debian/Ubuntu machine, online or air-gapped
# (only a Debian mirror and an npm registry reachable).
#   scripts/setup.sh run    runtime: ffmpeg, openssl (lessoncast tls), node modules, the mediasoup worker
#   scripts/setup.sh test   also: redis-server, chromium (browser tests), iproute2 (ss: socket checks),
#                           libnss3-tools (certutil: a test CA into Chromium's NSS database),
#                           coturn (TURN tests start their own turnserver on loopback; the reachability
#                           test one in a namespace), nftables (its NAT and firewalls),
#                           systemd (systemd-analyze checks deploy/lessoncast.service), postgresql
#                           (the catalog tests start their own cluster with initdb/pg_ctl on a free port)
# The mediasoup worker is built offline from the npm package's sources (scripts/build-worker.sh)
# unless LESSONCAST_WORKER=prebuilt, which lets mediasoup's own postinstall download it. The path
# of the built worker goes into .lessoncast/worker-bin, where the server looks for it: a starting
# server reads that file and runs no build script. Building lessoncast itself is scripts/build.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
mode="${1:-run}"
cd "$root"

# Node >= 22 first on PATH (the pinned Node 24 when the system node is older): npm ci and the
# worker build below run on it. Free when test.sh/start.sh already did it.
ensure_node

pkgs=(ffmpeg ca-certificates openssl)
[ "$mode" = "test" ] && pkgs+=(redis-server chromium fonts-dejavu-core iproute2 libnss3-tools coturn systemd nftables postgresql strace)
apt_install "${pkgs[@]}"
# Debian's coturn package enables its own service with the stock /etc/turnserver.conf; on a test
# machine nothing should relay but the turnservers the tests start and stop themselves.
if [ "$mode" = "test" ] && command -v systemctl >/dev/null && systemctl is-enabled --quiet coturn 2>/dev/null; then
  log "disabling Debian's coturn service (the TURN tests run their own turnserver)"
  systemctl disable --now coturn >&2 || true
fi

stamp="node_modules/.lessoncast-install-stamp"
recorded=".lessoncast/worker-bin"
want="$(cat package-lock.json package.json | sha256sum | cut -c1-16)-${LESSONCAST_WORKER:-offline}"
if [ "${LESSONCAST_WORKER:-offline}" = "prebuilt" ]; then
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci (mediasoup downloads its prebuilt worker)"
    npm ci --no-audit --no-fund >&2
    echo "$want" > "$stamp"
  fi
  # A recorded offline build would win over the prebuilt worker at the server's start.
  rm -f "$recorded"
  log "mediasoup worker: prebuilt, inside node_modules/mediasoup"
else
  # The build script installs its own Debian build packages. Setting MEDIASOUP_WORKER_BIN during
  # npm ci makes mediasoup's postinstall skip its download, which cannot succeed offline.
  worker_bin="$(bash "$here/build-worker.sh" --print-path | tail -n 1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci (mediasoup worker will be built from its own sources)"
    MEDIASOUP_WORKER_BIN="$worker_bin" npm ci --no-audit --no-fund >&2
    echo "$want" > "$stamp"
  fi
  worker_bin="$(bash "$here/build-worker.sh" | tail -n 1)"
  [ -x "$worker_bin" ] || die "worker build did not produce $worker_bin"
  mkdir -p "$(dirname "$recorded")"
  # Renamed into place: a server starting meanwhile reads the old path or the new, never half.
  printf '%s\n' "$worker_bin" > "$recorded.$$"
  mv -f "$recorded.$$" "$recorded"
  log "mediasoup worker: $worker_bin (recorded in $recorded)"
fi
