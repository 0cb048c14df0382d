#!/usr/bin/env bash
#
# Debian source packages without touching the system's apt sources: a private
# apt configuration (a temporary deb-src list for one suite, its own lists and
# cache) downloads the source package once into
# $CACHE_ROOT/sources/<package>-<suite>/, and fetch_debian_source unpacks it
# with Debian's own patches applied, as Debian builds it.
#
# Sourced by scripts/build-worker.sh (libsrtp2 with the OpenSSL backend), and
# run by the forwarding bench to build Janus's libsrtp2 the same way:
#
#   scripts/worker/debian-source.sh PACKAGE SUITE DEST
#
# The deb-src list names the archive the system's apt already uses (its
# mirror, see debian_source_list), so a machine that reaches only its own
# mirror fetches from there; LESSONCAST_DEBIAN_SOURCE_URIS="URI..." overrides.
# Needs apt-get and apt-config.

# apt_waiting: apt-get that waits (bounded) for another apt or dpkg's lock.
# shellcheck source=../apt-wait.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/../apt-wait.sh"

src_log() { printf '[debian-source] %s\n' "$*" >&2; }

# apt_source_entries: every entry of the system's apt sources, one per line:
# URI <tab> SUITES <tab> COMPONENTS <tab> SIGNED-BY (a key file or fingerprint;
# empty when none, or when the key is inline, which a one-line list cannot
# carry). Reads the files apt itself reads (apt-config): sources.list and
# sources.list.d/*.list in the one-line format, sources.list.d/*.sources in
# deb822; disabled stanzas and comments are skipped.
apt_source_entries() {
	local list=/etc/apt/sources.list parts=/etc/apt/sources.list.d/
	if command -v apt-config >/dev/null 2>&1; then
		eval "$(apt-config shell list Dir::Etc::SourceList/f parts Dir::Etc::SourceParts/d)"
	fi
	local one_line=() deb822=() f
	for f in "$list" "$parts"*.list; do [[ -f $f ]] && one_line+=("$f"); done
	for f in "$parts"*.sources; do [[ -f $f ]] && deb822+=("$f"); done
	# One-line: deb [ options ] URI SUITE COMPONENT...
	[[ ${#one_line[@]} -eq 0 ]] || awk '
		{ sub(/#.*/, "") }
		$1 == "deb" || $1 == "deb-src" {
			line = $0; sub(/^[ \t]*deb(-src)?[ \t]+/, "", line); key = ""
			if (line ~ /^\[/) {
				opts = substr(line, 2, index(line, "]") - 2); line = substr(line, index(line, "]") + 1)
				if (match(opts, /signed-by=[^ \t]+/)) key = substr(opts, RSTART + 10, RLENGTH - 10)
			}
			$0 = line; comps = $3; for (i = 4; i <= NF; i++) comps = comps " " $i
			if (NF >= 3) print $1 "\t" $2 "\t" comps "\t" key
		}' "${one_line[@]}"
	# deb822: stanzas of "Field: value" lines; a line starting with a blank continues the field.
	[[ ${#deb822[@]} -eq 0 ]] || awk '
		function flush(   n, u, i) {
			if (f["types"] ~ /(^| )deb(-src)?( |$)/ && tolower(f["enabled"]) != "no" && f["suites"] != "") {
				n = split(f["uris"], u, " ")
				for (i = 1; i <= n; i++) print u[i] "\t" f["suites"] "\t" f["components"] "\t" (inline ? "" : f["signed-by"])
			}
			delete f; inline = 0; last = ""
		}
		function value(text) { gsub(/^[ \t]+|[ \t]+$/, "", text); gsub(/[ \t]+/, " ", text); return text }
		FNR == 1 { flush() }
		/^#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { f[last] = value(f[last] " " $0); if (last == "signed-by") inline = 1; next }
		{ last = tolower(substr($0, 1, index($0, ":") - 1)); f[last] = value(substr($0, index($0, ":") + 1)) }
		END { flush() }' "${deb822[@]}"
}

# debian_source_list SUITE: the private deb-src list for SUITE. With
# LESSONCAST_DEBIAN_SOURCE_URIS, one line per URI given. Otherwise one per
# archive of the system's apt sources that has component main for SUITE, this
# release's codename or a Debian alias (stable, testing...): the distribution's
# archive or the mirror apt is set up with. The security archive (only
# <codename>-security) and third-party repositories (suites of their own) do
# not hold SUITE and are left out; an entry's Signed-By is kept. Fails with a
# WARNING when the sources name no such archive.
debian_source_list() {
	local suite=$1 codename uri keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	if [[ -n "${LESSONCAST_DEBIAN_SOURCE_URIS:-}" ]]; then
		local opts=""
		[[ -r $keyring ]] && opts="[signed-by=$keyring] "
		for uri in $LESSONCAST_DEBIAN_SOURCE_URIS; do printf 'deb-src %s%s %s main\n' "$opts" "$uri" "$suite"; done
		return 0
	fi
	codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")
	local found
	found=$(apt_source_entries | awk -F '\t' -v want="$suite" -v codename="${codename:-$suite}" '
		BEGIN { split(want " " codename " stable oldstable testing unstable", w, " "); for (i in w) ours[w[i]] = 1 }
		{
			n = split($2, s, " "); archive = 0
			for (i = 1; i <= n; i++) if (s[i] in ours) archive = 1
			uri = $1; sub(/\/+$/, "", uri)
			if (!archive || (" " $3 " ") !~ / main / || uri ~ /^cdrom:/ || seen[uri]++) next
			print "deb-src " ($4 == "" ? "" : "[signed-by=" $4 "] ") uri " " want " main"
		}')
	if [[ -z $found ]]; then
		src_log "WARNING: the apt sources name no archive holding $suite (main); set LESSONCAST_DEBIAN_SOURCE_URIS to the Debian mirror to fetch source packages from"
		return 1
	fi
	printf '%s\n' "$found"
}

# fetch_debian_source PACKAGE SUITE DEST: unpack PACKAGE's upstream source from
# Debian SUITE into DEST, with Debian's own patches (debian/patches/series)
# applied, as Debian builds it.
fetch_debian_source() {
	# CACHE_ROOT (the cache) and WORK (a scratch dir) come from the caller.
	local pkg=$1 suite=$2 dest=$3
	local src_cache="$CACHE_ROOT/sources/$pkg-$suite" apt_dir="$WORK/apt-$pkg-$suite"
	if ! compgen -G "$src_cache/${pkg}_*.orig.tar.*" >/dev/null; then
		mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
		debian_source_list "$suite" >"$apt_dir/sources.list" || return 1
		src_log "$pkg from Debian $suite: $(awk '{ print $(NF - 2) }' "$apt_dir/sources.list" | tr '\n' ' ')"
		local apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
			-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root -qq)
		# One unreachable archive of several fails the update; the source may still be in another.
		apt_waiting apt-get "${apt_opts[@]}" update ||
			src_log "WARNING: apt-get update failed for some of these archives; trying the ones it read"
		mkdir -p "$src_cache.tmp.$$"
		if ! (cd "$src_cache.tmp.$$" && apt_waiting apt-get "${apt_opts[@]}" source --download-only "$pkg"); then
			rm -rf "$src_cache.tmp.$$"
			return 1
		fi
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
