#!/usr/bin/env bash
#
# Build mediasoup's C++ worker (mediasoup-worker) offline, from the worker/
# sources shipped in the mediasoup npm package, against Debian's -dev
# packages. No GitHub, wrapdb or PyPI access is needed.
#
#   scripts/build-worker.sh                      build (or reuse the cache)
#   scripts/build-worker.sh --print-path         print where the binary is/will be
#   MEDIASOUP_WORKER_BIN=$(scripts/build-worker.sh | tail -1)
#
# Options:
#   --print-path               print the cached binary's path and exit; no
#                              build, no apt (use before `npm ci`, since
#                              mediasoup's postinstall skips its download when
#                              MEDIASOUP_WORKER_BIN is set)
#   --mediasoup-version X.Y.Z  build this version (also: MEDIASOUP_VERSION=...)
#   --force                    rebuild even if the cache has the binary
#   -h, --help                 this text
#
# Environment:
#   MEDIASOUP_VERSION          version to build (default: package-lock.json,
#                              then node_modules/mediasoup, then an exact
#                              version in package.json)
#   LESSONCAST_CACHE_DIR       cache root (default: $HOME/.cache/lessoncast)
#   LESSONCAST_KEEP_BUILD_DIR  1 = keep the temporary build dir on failure
#   LESSONCAST_WORKER_SRTP     openssl = static libsrtp2 on OpenSSL, built from
#                              Debian's source package (default); debian =
#                              Debian's shared libsrtp2 (on NSS)
#
# The binary is cached at
#   $LESSONCAST_CACHE_DIR/mediasoup-worker/<version>-<recipe hash>/mediasoup-worker
# where the recipe hash covers this script, everything under scripts/worker/
# and the Debian release/architecture. On success the absolute path of the
# binary is the LAST line of stdout; all progress goes to stderr.
#
# What the recipe does (see scripts/worker/README.md):
#   - replaces worker/subprojects/*.wrap by the local shims in
#     scripts/worker/subprojects/ (dependency() on Debian packages);
#   - libsrtp: Debian has 2.x, mediasoup calls the 3.x API; the libsrtp3 shim
#     puts an adapter srtp.h first on the include path;
#   - unordered_dense (mediasoup >= 3.20.1; in no Debian release): a
#     compatibility header over the standard containers
#     (scripts/worker/unordered-dense/), found through a generated .pc file;
#   - applies scripts/worker/patches/<version>/*.patch, the patches meant for
#     exactly that mediasoup version (3.19.3: the KTLS fix for Debian's
#     OpenSSL, fixed upstream by 3.32);
#   - relaxes meson_version when bookworm's meson (1.0.1) is older than asked;
#   - io_uring: mediasoup removed it in 3.20.7; older versions are built
#     without it (-Dms_disable_liburing=true), which cost less CPU here;
#   - libsrtp2 is built statically with the OpenSSL backend from the running
#     Debian release's source package (see setup_libsrtp), else Debian's
#     shared (NSS) libsrtp2 is linked.

set -euo pipefail

# Keep stdout clean for the final path: everything else goes to stderr.
exec 3>&1 1>&2

PROG=build-worker.sh
log() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() {
	printf '[%s] ERROR: %s\n' "$PROG" "$*" >&2
	exit 1
}

SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
SCRIPT_DIR=$(dirname -- "$SCRIPT_PATH")
PROJECT_DIR=$(dirname -- "$SCRIPT_DIR")
RECIPE_DIR="$SCRIPT_DIR/worker"

# Debian packages needed to build (and patch) any worker version.
BUILD_PACKAGES=(
	g++ pkg-config meson ninja-build patch
	libssl-dev libuv1-dev libsrtp2-dev
	libflatbuffers-dev flatbuffers-compiler
)
# ... and those only some versions need, by the subproject that asks for them
# (mediasoup 3.19 had usrsctp and abseil; 3.20 replaced both).
declare -A SUBPROJECT_PACKAGES=(
	[usrsctp]=libusrsctp-dev
	[abseil-cpp]=libabsl-dev
)

# meson version mediasoup may ask for and that bookworm's 1.0.1 is known to
# build identically with; anything newer needs a newer meson.
MESON_RELAX_MAX=1.1.0

# --------------------------------------------------------------------------
# Arguments

PRINT_PATH=0
FORCE=0
WANT_VERSION=${MEDIASOUP_VERSION:-}

usage() { sed -n '3,/^$/{s/^# \{0,1\}//;p}' "$SCRIPT_PATH" >&3; }

while [[ $# -gt 0 ]]; do
	case "$1" in
		--print-path) PRINT_PATH=1 ;;
		--force) FORCE=1 ;;
		--mediasoup-version=*) WANT_VERSION=${1#*=} ;;
		--mediasoup-version)
			[[ $# -ge 2 ]] || die "--mediasoup-version needs a value"
			WANT_VERSION=$2
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown argument: $1 (see --help)" ;;
	esac
	shift
done

# --------------------------------------------------------------------------
# Helpers

need_cmd() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found: $2"; }

# version_ge A B: true if version A >= version B.
version_ge() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" == "$2" ]]; }

is_exact_version() { [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; }

# json_get FILE EXPR: print a value from a JSON file (EXPR is JS on `j`), or
# nothing.
json_get() {
	node -e '
		const fs = require("fs");
		let j;
		try { j = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { process.exit(0); }
		let v;
		try { v = (new Function("j", "return (" + process.argv[2] + ");"))(j); } catch { v = undefined; }
		if (typeof v === "string") process.stdout.write(v);
	' "$1" "$2"
}

NM_MEDIASOUP="$PROJECT_DIR/node_modules/mediasoup"

# Resolve the mediasoup version: argument/env, then the lockfile (what
# `npm ci` will install, so --print-path before `npm ci` agrees with the build
# after it), then node_modules, then an exact version in package.json.
resolve_version() {
	local v="" f
	if [[ -n "$WANT_VERSION" ]]; then
		v=${WANT_VERSION#v}
		VERSION_SOURCE="argument/MEDIASOUP_VERSION"
	fi
	if [[ -z "$v" ]]; then
		for f in npm-shrinkwrap.json package-lock.json; do
			[[ -f "$PROJECT_DIR/$f" ]] || continue
			v=$(json_get "$PROJECT_DIR/$f" \
				'(j.packages && j.packages["node_modules/mediasoup"] && j.packages["node_modules/mediasoup"].version) || (j.dependencies && j.dependencies.mediasoup && j.dependencies.mediasoup.version)')
			if [[ -n "$v" ]]; then
				VERSION_SOURCE=$f
				break
			fi
		done
	fi
	if [[ -z "$v" && -f "$NM_MEDIASOUP/package.json" ]]; then
		v=$(json_get "$NM_MEDIASOUP/package.json" 'j.version')
		VERSION_SOURCE="node_modules/mediasoup"
	fi
	if [[ -z "$v" && -f "$PROJECT_DIR/package.json" ]]; then
		v=$(json_get "$PROJECT_DIR/package.json" \
			'(j.dependencies && j.dependencies.mediasoup) || (j.devDependencies && j.devDependencies.mediasoup) || (j.optionalDependencies && j.optionalDependencies.mediasoup)')
		v=${v#=}
		v=${v#v}
		if [[ -n "$v" ]] && ! is_exact_version "$v"; then
			die "package.json asks for mediasoup '$v' (a range) and there is no package-lock.json to pin it; pass --mediasoup-version X.Y.Z or MEDIASOUP_VERSION=X.Y.Z"
		fi
		VERSION_SOURCE=package.json
	fi
	[[ -n "$v" ]] || die "cannot determine the mediasoup version (no package-lock.json, node_modules/mediasoup or mediasoup dependency in $PROJECT_DIR/package.json); pass --mediasoup-version X.Y.Z or MEDIASOUP_VERSION=X.Y.Z"
	is_exact_version "$v" || die "mediasoup version '$v' (from $VERSION_SOURCE) is not an exact X.Y.Z version"
	MS_VERSION=$v
}

# Hash of the build recipe: this script, every file under scripts/worker/ but its docs
# (relative path + content), and the platform the binary is built for (it
# links Debian's shared libraries).
recipe_hash() {
	local os_id="unknown" arch
	if [[ -r /etc/os-release ]]; then
		os_id=$(. /etc/os-release && printf '%s-%s' "${ID:-linux}" "${VERSION_ID:-${VERSION_CODENAME:-unknown}}")
	fi
	arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
	{
		printf 'platform %s %s\n' "$os_id" "$arch"
		printf 'srtp %s\n' "${LESSONCAST_WORKER_SRTP:-openssl}"
		printf 'script %s\n' "$(sha256sum <"$SCRIPT_PATH" | cut -d' ' -f1)"
		(
			cd "$RECIPE_DIR"
			find . -type f ! -name '*.md' -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
				printf 'file %s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
			done
		)
	} | sha256sum | cut -c1-12
}

cache_root() {
	local home=${HOME:-}
	if [[ -z "$home" ]]; then
		home=$(getent passwd "$(id -u)" | cut -d: -f6)
	fi
	if [[ -n "${LESSONCAST_CACHE_DIR:-}" ]]; then
		printf '%s' "$LESSONCAST_CACHE_DIR"
	else
		[[ -n "$home" ]] || die "HOME is not set; set LESSONCAST_CACHE_DIR"
		printf '%s' "$home/.cache/lessoncast"
	fi
}

# --------------------------------------------------------------------------
# Resolve version, key and cache location

[[ -d "$RECIPE_DIR/subprojects" ]] || die "recipe directory $RECIPE_DIR/subprojects is missing"
need_cmd node "Node.js is needed to read package.json/package-lock.json"
need_cmd sha256sum "install coreutils"

VERSION_SOURCE=""
MS_VERSION=""
resolve_version
RECIPE_HASH=$(recipe_hash)
CACHE_ROOT="$(cache_root)"
CACHE_BASE="$CACHE_ROOT/mediasoup-worker"
case "$CACHE_BASE" in
	/*) ;;
	*) CACHE_BASE="$PWD/$CACHE_BASE"; CACHE_ROOT="$PWD/$CACHE_ROOT" ;;
esac
KEY="$MS_VERSION-$RECIPE_HASH"
CACHE_DIR="$CACHE_BASE/$KEY"
CACHED_BIN="$CACHE_DIR/mediasoup-worker"

if [[ $PRINT_PATH -eq 1 ]]; then
	printf '%s\n' "$CACHED_BIN" >&3
	exit 0
fi

log "mediasoup $MS_VERSION (from $VERSION_SOURCE), recipe $RECIPE_HASH"

if [[ $FORCE -eq 0 && -x "$CACHED_BIN" ]]; then
	log "cached: $CACHED_BIN"
	printf '%s\n' "$CACHED_BIN" >&3
	exit 0
fi

# --------------------------------------------------------------------------
# Debian packages

# apt_waiting: apt-get that waits (bounded) for another apt or dpkg's lock.
# shellcheck source=apt-wait.sh
source "$SCRIPT_DIR/apt-wait.sh"

ensure_packages() { # PACKAGE...
	local missing=() p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	log "installing Debian packages: ${missing[*]}"
	[[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}); run as root or install them: apt-get install -y ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt_waiting apt-get update -q || die "apt-get update failed"
	apt_waiting apt-get install -y -q --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed for: ${missing[*]}"
}

need_cmd dpkg "this script targets Debian/Ubuntu"
ensure_packages "${BUILD_PACKAGES[@]}"

for c in meson ninja pkg-config flatc patch g++; do
	need_cmd "$c" "should have come with the Debian packages above"
done

# The code generated by Debian's flatc static_asserts the flatbuffers header
# version: both must be the same release.
FLATC_VERSION=$(flatc --version | awk '{print $NF}')
FB_HEADERS_VERSION=$(pkg-config --modversion flatbuffers)
[[ "$FLATC_VERSION" == "$FB_HEADERS_VERSION" ]] ||
	die "flatc $FLATC_VERSION does not match flatbuffers headers $FB_HEADERS_VERSION (install matching flatbuffers-compiler and libflatbuffers-dev)"

# --------------------------------------------------------------------------
# One build per key at a time (other sessions may run this concurrently).

mkdir -p "$CACHE_BASE" || die "cannot create cache directory $CACHE_BASE"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CACHE_BASE/.$KEY.lock"
	if ! flock -n 9; then
		log "another build of $KEY is running; waiting for it"
		flock 9
	fi
	if [[ $FORCE -eq 0 && -x "$CACHED_BIN" ]]; then
		log "cached (built meanwhile): $CACHED_BIN"
		printf '%s\n' "$CACHED_BIN" >&3
		exit 0
	fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lessoncast-worker.XXXXXX")
cleanup() {
	local rc=$?
	if [[ $rc -ne 0 && "${LESSONCAST_KEEP_BUILD_DIR:-0}" == 1 ]]; then
		log "build directory kept: $WORK"
	else
		rm -rf -- "$WORK"
	fi
}
trap cleanup EXIT

# --------------------------------------------------------------------------
# Sources: node_modules/mediasoup when it is the wanted version, else npm pack.

SRC_WORKER=""
if [[ -f "$NM_MEDIASOUP/package.json" && -f "$NM_MEDIASOUP/worker/meson.build" &&
	"$(json_get "$NM_MEDIASOUP/package.json" 'j.version')" == "$MS_VERSION" ]]; then
	SRC_WORKER="$NM_MEDIASOUP/worker"
	log "sources: $SRC_WORKER"
else
	need_cmd npm "needed to fetch the mediasoup package (npm pack)"
	log "sources: npm pack mediasoup@$MS_VERSION"
	mkdir -p "$WORK/pack"
	# From the project dir so its .npmrc (registry settings) applies; npm pack
	# of a registry spec does not touch the project.
	TARBALL=$(cd "$PROJECT_DIR" && npm pack --silent --pack-destination "$WORK/pack" "mediasoup@$MS_VERSION" | tail -n1) ||
		die "npm pack mediasoup@$MS_VERSION failed"
	[[ -f "$WORK/pack/$TARBALL" ]] || die "npm pack did not produce a tarball (got '$TARBALL')"
	tar -xzf "$WORK/pack/$TARBALL" -C "$WORK/pack" || die "cannot extract $TARBALL"
	PACK_VERSION=$(json_get "$WORK/pack/package/package.json" 'j.version')
	[[ "$PACK_VERSION" == "$MS_VERSION" ]] || die "npm pack gave mediasoup $PACK_VERSION, wanted $MS_VERSION"
	SRC_WORKER="$WORK/pack/package/worker"
fi
[[ -f "$SRC_WORKER/meson.build" ]] || die "no worker/meson.build in $SRC_WORKER"

# Copy (never build in node_modules), leaving out any previous build output.
BUILD_SRC="$WORK/worker"
mkdir -p "$BUILD_SRC"
tar -C "$SRC_WORKER" --exclude=./out --exclude=./subprojects/packagecache -cf - . |
	tar -C "$BUILD_SRC" -xf - || die "cannot copy $SRC_WORKER"

# --------------------------------------------------------------------------
# Subprojects: local shims instead of download wraps.

# Names mediasoup's meson files ask for with subproject('name', ...).
mapfile -t WANTED_SUBPROJECTS < <(
	find "$BUILD_SRC" -name meson.build -not -path '*/subprojects/*' -exec cat {} + |
		tr '\n' ' ' | grep -oE "subproject\([[:space:]]*'[^']+'" | sed -E "s/.*'([^']+)'/\1/" | sort -u
)
[[ ${#WANTED_SUBPROJECTS[@]} -gt 0 ]] || die "found no subproject() calls in mediasoup's meson.build: layout changed?"

rm -rf "$BUILD_SRC/subprojects"
mkdir -p "$BUILD_SRC/subprojects"
EXTRA_PACKAGES=()
for sp in "${WANTED_SUBPROJECTS[@]}"; do
	[[ -n "${SUBPROJECT_PACKAGES[$sp]:-}" ]] && EXTRA_PACKAGES+=("${SUBPROJECT_PACKAGES[$sp]}")
	if [[ -d "$RECIPE_DIR/subprojects/$sp" ]]; then
		cp -a "$RECIPE_DIR/subprojects/$sp" "$BUILD_SRC/subprojects/$sp"
		[[ -f "$BUILD_SRC/subprojects/$sp/meson_options.txt" ]] ||
			die "shim subprojects/$sp has no meson_options.txt"
	else
		case "$sp" in
			liburing | wingetopt | catch2) ;; # conditional: liburing (disabled below), Windows, tests
			*) die "mediasoup $MS_VERSION wants subproject '$sp' and scripts/worker/subprojects/$sp does not exist" ;;
		esac
	fi
done
log "subproject shims: $(ls "$BUILD_SRC/subprojects" | tr '\n' ' ')"
[[ ${#EXTRA_PACKAGES[@]} -gt 0 ]] && ensure_packages "${EXTRA_PACKAGES[@]}"

# libsrtp 3.x's opaque policy API (srtp_policy_create ...), which mediasoup
# 3.32 builds its sessions with: the adapter header provides it on request.
if grep -rq 'srtp_policy_create' "$BUILD_SRC/src"; then
	touch "$BUILD_SRC/subprojects/libsrtp3/POLICY_API"
	log "libsrtp3 shim: with the 3.x policy API"
fi

# unordered_dense: mediasoup asks for it with dependency('unordered_dense')
# (a wrap's [provide], not a subproject() call). A pkg-config file pointing at
# the compatibility header answers that lookup.
UNORDERED_DENSE=none
if grep -q "dependency('unordered_dense')" "$BUILD_SRC/meson.build"; then
	mkdir -p "$WORK/pkgconfig" "$WORK/unordered-dense"
	cp -a "$RECIPE_DIR/unordered-dense/include" "$WORK/unordered-dense/"
	cat >"$WORK/pkgconfig/unordered_dense.pc" <<-PC
		Name: unordered_dense
		Description: lessoncast compatibility header over std::unordered_map/set
		Version: 5.3.2
		Cflags: -I$WORK/unordered-dense/include
	PC
	export PKG_CONFIG_PATH="$WORK/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
	UNORDERED_DENSE="lessoncast compatibility header (std::unordered_map/set)"
	log "unordered_dense: $UNORDERED_DENSE"
fi

# --------------------------------------------------------------------------
# Patches

# Patches live under patches/<mediasoup version>/: each fixes that exact
# release, and a newer release must be checked (and the patch carried over or
# dropped) on purpose.
shopt -s nullglob
PATCHES=("$RECIPE_DIR/patches/$MS_VERSION"/*.patch)
shopt -u nullglob
for p in "${PATCHES[@]}"; do
	log "patch: $(basename "$p")"
	if ! patch -d "$BUILD_SRC" -p1 --forward --batch --dry-run --silent <"$p" >&2; then
		die "patch $(basename "$p") does not apply to mediasoup $MS_VERSION; update it under scripts/worker/patches/"
	fi
	patch -d "$BUILD_SRC" -p1 --forward --batch --no-backup-if-mismatch --silent <"$p" >&2 ||
		die "applying $(basename "$p") failed"
done

# --------------------------------------------------------------------------
# meson_version: bookworm has 1.0.1, mediasoup 3.19 asks for >= 1.1.0.

MESON_VERSION=$(meson --version)
MESON_REQUIRED=$(grep -oE "meson_version[[:space:]]*:[[:space:]]*'>=[[:space:]]*[0-9.]+'" "$BUILD_SRC/meson.build" |
	head -n1 | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' || true)
if [[ -n "$MESON_REQUIRED" ]] && ! version_ge "$MESON_VERSION" "$MESON_REQUIRED"; then
	version_ge "$MESON_RELAX_MAX" "$MESON_REQUIRED" ||
		die "mediasoup $MS_VERSION needs meson >= $MESON_REQUIRED, installed $MESON_VERSION (try bookworm-backports' meson)"
	log "meson $MESON_VERSION < $MESON_REQUIRED: relaxing meson_version in the build copy"
	sed -i -E "s/(meson_version[[:space:]]*:[[:space:]]*)'>=[[:space:]]*$MESON_REQUIRED'/\1'>= $MESON_VERSION'/" "$BUILD_SRC/meson.build"
	grep -q "'>= $MESON_VERSION'" "$BUILD_SRC/meson.build" || die "could not relax meson_version in meson.build"
fi

# --------------------------------------------------------------------------
# Debian source packages, fetched with a private apt configuration (a
# temporary deb-src list; the system's apt sources stay untouched) and cached
# under $CACHE_ROOT/sources/<package>-<suite>/.

# fetch_debian_source PACKAGE SUITE DEST (scripts/worker/debian-source.sh)
# shellcheck source=worker/debian-source.sh
source "$RECIPE_DIR/debian-source.sh"

# --------------------------------------------------------------------------
# io_uring: gone from mediasoup since 3.20.7 ("consumes more CPU"), which is
# what docs/forwarding.md measured here too. Older versions still have the
# option: build them without it.
LIBURING_ARGS=()
if grep -q "'ms_disable_liburing'" "$BUILD_SRC/meson_options.txt" 2>/dev/null; then
	LIBURING_ARGS=(-Dms_disable_liburing=true)
fi

# --------------------------------------------------------------------------
# libsrtp on OpenSSL. Debian's libsrtp2 is built against NSS, which sets up
# and tears down an NSS crypto context for every packet: with AES-CM +
# HMAC-SHA1 outputs SRTP was ~95 % of the worker's user-space instructions per
# forwarded packet (docs/forwarding.md). The same Debian source package built
# with --enable-openssl keeps one OpenSSL (AES-NI) context per stream; it is
# linked statically, so the worker no longer needs libsrtp2-1/libnss3 at run
# time. Any failure falls back to Debian's shared libsrtp2.
# LESSONCAST_WORKER_SRTP=debian keeps Debian's (NSS) library.
SRTP_SUITE=${LESSONCAST_SRTP_SUITE:-}

build_libsrtp_openssl() { # installs into $BUILD_SRC/subprojects/libsrtp3/static
	local suite=$SRTP_SUITE src="$WORK/libsrtp-src" prefix="$BUILD_SRC/subprojects/libsrtp3/static" version
	if [[ -z "$suite" ]]; then
		suite=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")
		[[ -n "$suite" ]] || { log "libsrtp: cannot tell the Debian release (VERSION_CODENAME)"; return 1; }
	fi
	fetch_debian_source libsrtp2 "$suite" "$src" || { log "libsrtp: cannot fetch Debian $suite's libsrtp2 source package (deb-src from the apt sources, or LESSONCAST_DEBIAN_SOURCE_URIS)"; return 1; }
	version=$(sed -n 's/^PACKAGE_VERSION=.\([0-9.]*\).*/\1/p' "$src/configure" | head -n1)
	[[ "$version" == 2.* ]] || { log "libsrtp: Debian $suite has libsrtp ${version:-?}, the adapter is for 2.x"; return 1; }
	log "libsrtp $version: building a static library with the OpenSSL backend from Debian $suite's source"
	# Debian's own flags (debian/rules), with OpenSSL instead of NSS; -fPIC to
	# link into a PIE.
	(cd "$src" && CFLAGS="-O2 -fPIC -D_REENTRANT" ./configure --prefix="$prefix" \
		--enable-openssl --disable-debug --disable-stdout >&2 &&
		make -j"$(nproc)" libsrtp2.a >&2 && make install >&2) ||
		{ log "libsrtp: build failed"; return 1; }
	grep -q '^#define OPENSSL 1' "$src/crypto/include/config.h" ||
		{ log "libsrtp: configure did not select OpenSSL"; return 1; }
	[[ -f "$prefix/lib/libsrtp2.a" && -f "$prefix/include/srtp2/srtp.h" ]] ||
		{ log "libsrtp: install did not produce lib/libsrtp2.a and include/srtp2/srtp.h"; return 1; }
	SRTP_VERSION="$version (static, OpenSSL, Debian $suite source)"
}

setup_libsrtp() {
	SRTP_VERSION="Debian libsrtp2 $(pkg-config --modversion libsrtp2) (shared, NSS)"
	case "${LESSONCAST_WORKER_SRTP:-openssl}" in
		debian) log "libsrtp: Debian's shared libsrtp2 (LESSONCAST_WORKER_SRTP=debian)" ;;
		openssl)
			build_libsrtp_openssl || {
				rm -rf "$BUILD_SRC/subprojects/libsrtp3/static"
				log "WARNING: libsrtp: falling back to Debian's shared libsrtp2 (NSS), which makes SRTP 3-4x as costly per packet (see above why; scripts/worker/README.md)"
			}
			;;
		*) die "LESSONCAST_WORKER_SRTP must be openssl or debian, got '${LESSONCAST_WORKER_SRTP}'" ;;
	esac
}
SRTP_VERSION=""
setup_libsrtp

# --------------------------------------------------------------------------
# Configure and build

BUILD_DIR="$WORK/build"
JOBS=$(nproc 2>/dev/null || echo 2)
log "meson setup (meson $MESON_VERSION)"
if ! meson setup "$BUILD_DIR" "$BUILD_SRC" \
	--buildtype release -Db_ndebug=true --wrap-mode=nodownload \
	"${LIBURING_ARGS[@]}" >&2; then
	[[ -f "$BUILD_DIR/meson-logs/meson-log.txt" ]] && tail -n 40 "$BUILD_DIR/meson-logs/meson-log.txt" >&2
	die "meson setup failed"
fi

# The generated FBS/*.h headers must exist before the C++ sources compile.
log "generating flatbuffers headers (flatc $FLATC_VERSION)"
meson compile -C "$BUILD_DIR" flatbuffers-generator >&2 || die "flatbuffers-generator failed"

log "building mediasoup-worker with ninja -j$JOBS (a few minutes)"
START=$SECONDS
ninja -C "$BUILD_DIR" -j"$JOBS" mediasoup-worker >&2 || die "ninja mediasoup-worker failed"
log "compiled in $((SECONDS - START)) s"

BUILT_BIN="$BUILD_DIR/mediasoup-worker"
[[ -x "$BUILT_BIN" ]] || die "build finished but $BUILT_BIN is missing"

# --------------------------------------------------------------------------
# Smoke checks: every shared library resolves, and the binary starts (without
# MEDIASOUP_VERSION in its environment it exits with its own code 41).

if ldd "$BUILT_BIN" | grep -q 'not found'; then
	ldd "$BUILT_BIN" >&2
	die "the built binary has unresolved shared libraries"
fi
set +e
env -u MEDIASOUP_VERSION "$BUILT_BIN" </dev/null >/dev/null 2>&1
RC=$?
set -e
[[ $RC -eq 41 ]] || die "smoke test: expected exit code 41 from the bare binary, got $RC"

# --------------------------------------------------------------------------
# Install into the cache atomically (copy next to the target, then rename).

mkdir -p "$CACHE_DIR"
{
	printf 'mediasoup %s\n' "$MS_VERSION"
	printf 'recipe %s\n' "$RECIPE_HASH"
	printf 'built %s on %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -srm)"
	printf 'source %s\n' "$SRC_WORKER"
	printf 'meson %s, flatc %s, g++ %s\n' "$MESON_VERSION" "$FLATC_VERSION" "$(g++ -dumpfullversion)"
	printf 'unordered_dense %s\n' "$UNORDERED_DENSE"
	printf 'libsrtp %s\n' "$SRTP_VERSION"
	printf 'patches:'
	for p in "${PATCHES[@]}"; do printf ' %s' "$(basename "$p")"; done
	printf '\nrun-time libraries (dpkg):\n'
	dpkg-query -W -f '  ${Package} ${Version}\n' libssl3 libuv1 libsrtp2-1 libnss3 libnspr4 2>/dev/null || true
} >"$CACHE_DIR/BUILDINFO.tmp.$$"
mv -f "$CACHE_DIR/BUILDINFO.tmp.$$" "$CACHE_DIR/BUILDINFO"

TMP_BIN="$CACHE_DIR/.mediasoup-worker.tmp.$$"
cp "$BUILT_BIN" "$TMP_BIN"
chmod 0755 "$TMP_BIN"
mv -f "$TMP_BIN" "$CACHED_BIN"

log "done: $CACHED_BIN ($(du -h "$CACHED_BIN" | cut -f1))"
printf '%s\n' "$CACHED_BIN" >&3
