#!/usr/bin/env bash
#
# Debian source packages without touching the system's apt sources: a private
# apt configuration (a temporary deb-src list for one suite, its own lists and
# cache) downloads the source package once into
# $CACHE_ROOT/sources/<package>-<suite>/, and fetch_debian_source unpacks it
# with Debian's own patches applied, as Debian builds it.
#
# Sourced by scripts/build-worker.sh (liburing from trixie, libsrtp2 with the
# OpenSSL backend), and run by the forwarding bench to build Janus's libsrtp2
# the same way:
#
#   scripts/worker/debian-source.sh PACKAGE SUITE DEST
#
# Needs apt-get, the debian-archive-keyring and access to deb.debian.org (or
# the mirror apt is configured for).

# fetch_debian_source PACKAGE SUITE DEST: unpack PACKAGE's upstream source from
# Debian SUITE into DEST, with Debian's own patches (debian/patches/series)
# applied, as Debian builds it.
fetch_debian_source() {
	# CACHE_ROOT (the cache) and WORK (a scratch dir) come from the caller.
	local pkg=$1 suite=$2 dest=$3
	local src_cache="$CACHE_ROOT/sources/$pkg-$suite" apt_dir="$WORK/apt-$pkg-$suite"
	if ! compgen -G "$src_cache/${pkg}_*.orig.tar.*" >/dev/null; then
		mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$src_cache.tmp.$$"
		printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
			"$suite" >"$apt_dir/sources.list"
		local apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
			-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root -qq)
		apt-get "${apt_opts[@]}" update >&2 || return 1
		(cd "$src_cache.tmp.$$" && apt-get "${apt_opts[@]}" source --download-only "$pkg" >&2) || return 1
		rm -rf "$src_cache" && mv "$src_cache.tmp.$$" "$src_cache"
	fi
	local orig debian
	orig=$(compgen -G "$src_cache/${pkg}_*.orig.tar.*" | head -n1)
	debian=$(compgen -G "$src_cache/${pkg}_*.debian.tar.*" | head -n1 || true)
	mkdir -p "$dest"
	tar -xf "$orig" -C "$dest" --strip-components=1 || return 1
	if [[ -n "$debian" ]]; then
		tar -xf "$debian" -C "$dest" || return 1
		if [[ -f "$dest/debian/patches/series" ]]; then
			local p
			while read -r p _; do
				[[ -z "$p" || "$p" == \#* ]] && continue
				patch -d "$dest" -p1 --forward --batch --silent <"$dest/debian/patches/$p" >&2 || return 1
			done <"$dest/debian/patches/series"
		fi
	fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
	[[ $# -eq 3 ]] || { echo "usage: $0 PACKAGE SUITE DEST" >&2; exit 2; }
	CACHE_ROOT=${LESSONCAST_CACHE_DIR:-$HOME/.cache/lessoncast}
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/lessoncast-src.XXXXXX")
	trap 'rm -rf -- "$WORK"' EXIT
	fetch_debian_source "$@"
fi
