# Shared helpers for lessoncast's shell scripts (sourced, not run).
# shellcheck shell=bash

log() { printf '[lessoncast] %s\n' "$*" >&2; }
die() { printf '[lessoncast] error: %s\n' "$*" >&2; exit 1; }

# Where this file lives: scripts/ (sourced, so BASH_SOURCE, not $0).
lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# apt_waiting: apt-get that waits (bounded) for another apt or dpkg's lock.
# shellcheck source=apt-wait.sh
. "$lib_dir/apt-wait.sh"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

# apt_install PKG... : installs the Debian packages that are missing; quiet and idempotent. Waits
# for apt's and dpkg's locks while another apt holds them (unattended-upgrades), within bounds.
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${LESSONCAST_SKIP_APT:-}" = "1" ]; then
    die "missing Debian packages (LESSONCAST_SKIP_APT=1): ${missing[*]}"
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  apt_waiting as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed (see above)"
  apt_waiting as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed for: ${missing[*]}"
}

# free_port : prints a TCP port free on loopback.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# cache_root : the cache the worker build and the pinned Node share (as scripts/build-worker.sh),
# absolute because scripts cd around and PATH entries must stay valid.
cache_root() {
  local r="${LESSONCAST_CACHE_DIR:-${HOME:?HOME is not set; set LESSONCAST_CACHE_DIR}/.cache/lessoncast}"
  case "$r" in /*) printf '%s' "$r" ;; *) printf '%s' "$PWD/$r" ;; esac
}

# ensure_node : makes `node` on PATH a Node.js >= 22, which mediasoup 3.32 requires. The system
# node when it is new enough; else the Node 24 pinned in scripts/node/ (installed into the cache
# on first use), put first on PATH and exported, so npm and npx (`#!/usr/bin/env node`), tsx, tap,
# the server and every child run on it. Nested scripts inherit LESSONCAST_NODE and skip the check.
ensure_node() {
  [ -n "${LESSONCAST_NODE:-}" ] && [ "$(command -v node)" = "$LESSONCAST_NODE" ] && return 0
  local v major bin
  v="$(node -v 2>/dev/null || true)"
  major="${v#v}"
  major="${major%%.*}"
  if [ "$major" -ge 22 ] 2>/dev/null; then
    LESSONCAST_NODE="$(command -v node)"
    export LESSONCAST_NODE
    log "node $v: $LESSONCAST_NODE"
    return 0
  fi
  bin="$(node_pinned_bin)" || exit 1
  export PATH="$bin:$PATH" LESSONCAST_NODE="$bin/node"
  # Under `npm test` on the old node, npm set these to itself for its scripts: name ours instead.
  [ -z "${NODE:-}" ] || export NODE="$bin/node"
  [ -z "${npm_node_execpath:-}" ] || export npm_node_execpath="$bin/node"
  # A native addon (none today) must build against this node's headers, which the package carries.
  export npm_config_nodedir="${bin%/bin}"
  log "node $(node -v): $bin (pinned in scripts/node/; system node: ${v:-none}, need >= 22)"
}

# node_pinned_bin : prints the bin directory of the Node pinned in scripts/node/ for this machine,
# installing it first when the cache lacks it. npm ci fetches the official binary (npm package
# node-linux-<arch>) and checks it against the lock's integrity hash. The cache key covers the pin
# files, so a new pin installs beside the old one; an install appears only once complete.
node_pinned_bin() {
  local src="$lib_dir/node" arch version root dir bin tmp
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) arch=x64 ;;
    Linux-aarch64) arch=arm64 ;;
    *) die "no Node.js pinned for $(uname -s) $(uname -m) in scripts/node/; install Node.js >= 22 by hand" ;;
  esac
  version="$(sed -n "s/.*\"node-linux-$arch\": *\"\([^\"]*\)\".*/\1/p" "$src/package.json")"
  [ -n "$version" ] || die "scripts/node/package.json pins no node-linux-$arch; install Node.js >= 22 by hand"
  root="$(cache_root)" || exit 1
  dir="$root/node/$version-linux-$arch-$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-12)"
  bin="$dir/node_modules/node-linux-$arch/bin"
  [ -x "$bin/node" ] && { printf '%s\n' "$bin"; return 0; }

  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    die "Node.js >= 22 is required; npm (on any Node.js) is needed to fetch it from the npm registry (Debian: apt-get install nodejs npm), or install Node.js >= 22 by hand"
  fi
  mkdir -p "$root/node" || die "cannot create $root/node"
  tmp="$(mktemp -d "$dir.tmp.XXXXXX")" || die "cannot write to $root/node"
  log "fetching Node.js $version (npm package node-linux-$arch) into $root/node/"
  if ! node_pin_one "$src" "$tmp" "node-linux-$arch" ||
    ! npm ci --prefix "$tmp" --ignore-scripts --no-audit --no-fund >&2 ||
    [ "$("$tmp/node_modules/node-linux-$arch/bin/node" -v 2>/dev/null)" != "v$version" ]; then
    rm -rf "$tmp"
    die "could not install Node.js $version from the npm registry (see above); or install Node.js >= 22 by hand"
  fi
  # Atomic: the finished install is renamed into place; if a concurrent run got there first, its
  # copy stays and ours goes. (mktemp made it 0700; others sharing the cache may run it.)
  chmod 755 "$tmp"
  mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  [ -x "$bin/node" ] || die "Node.js $version is missing from $dir"
  printf '%s\n' "$bin"
}

# node_pin_one SRC DST PACKAGE : writes into DST the pin of SRC reduced to PACKAGE as a plain
# dependency. Why: npm skips an optional package it cannot fetch or verify and still exits 0, so
# with the pin as committed (both architectures, optional) a failed download or integrity
# mismatch would pass silently; as a plain dependency it fails npm ci. The integrity hash is copied
# as is. Runs on whatever old node is there (it is only JSON).
node_pin_one() {
  node -e '
    const fs = require("fs"), path = require("path");
    const [src, dst, name] = process.argv.slice(1);
    const read = (f) => JSON.parse(fs.readFileSync(path.join(src, f), "utf8"));
    const pkg = read("package.json"), lock = read("package-lock.json");
    const root = lock.packages[""], entry = lock.packages["node_modules/" + name];
    const dependencies = { [name]: pkg.optionalDependencies[name] };
    delete entry.optional;
    for (const top of [pkg, root]) {
      top.dependencies = dependencies;
      delete top.optionalDependencies;
    }
    lock.packages = { "": root, ["node_modules/" + name]: entry };
    fs.writeFileSync(path.join(dst, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
    fs.writeFileSync(path.join(dst, "package-lock.json"), JSON.stringify(lock, null, 2) + "\n");
  ' "$@"
}
