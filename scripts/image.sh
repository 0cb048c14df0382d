#!/usr/bin/env bash
# The container image, built and run for real with Debian's podman where no Docker engine and no
# container registry are reachable: only a Debian mirror and an npm registry are needed.
#   scripts/image.sh base    makes the base image once: Debian bookworm by debootstrap (minbase,
#                            ca-certificates) from the apt sources' Debian mirror, with the Node
#                            pinned in scripts/node/ and the npm pinned in scripts/image/
#                            (both from the npm registry, checked against their lock); cached as
#                            a tarball under $LESSONCAST_CACHE_DIR/image/, imported into podman
#   scripts/image.sh build   base, then podman build of the Dockerfile on it (BUILD_IMAGE and
#                            RUNTIME_IMAGE); the worker comes from the worker build cache
#   scripts/image.sh check   build, then starts a container (host network, loopback, a free
#                            port, one worker) and checks GET /readyz answers 200 "ready" with
#                            the worker alive, the healthcheck passes and ffmpeg runs; stops and
#                            removes it. Fails loudly on anything else.
# The last line of stdout is the image name; progress goes to stderr.
#
# Environment:
#   LESSONCAST_IMAGE          the tag built (default localhost/lessoncast:latest)
#   LESSONCAST_CACHE_DIR      cache root (default ~/.cache/lessoncast). Its mediasoup-worker/
#                             and sources/ are mounted into the build (podman build -v): a
#                             worker built before for the same key is taken, not compiled again;
#                             one compiled in the build (~12 min on 2 cores) is kept there.
#   LESSONCAST_DEBIAN_MIRROR  the mirror debootstrap and the image's apt use (default: the Debian
#                             archive the system's apt sources name for bookworm)
#   LESSONCAST_OCI_RUNTIME    podman's OCI runtime (default runc: bookworm's crun 1.8 refuses a
#                             host whose cgroups are mounted in hybrid v1 + v2 mode)
#
# Podman runs as root with the host's network (build and run): no bridge, no iptables rules,
# nothing left behind on the host but the images in podman's store.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=worker/debian-source.sh
. "$here/worker/debian-source.sh"
cd "$root"

mode="${1:-check}"
case "$mode" in base | build | check) ;; *) die "usage: scripts/image.sh [base|build|check]" ;; esac

suite=bookworm
image="${LESSONCAST_IMAGE:-localhost/lessoncast:latest}"
runtime="${LESSONCAST_OCI_RUNTIME:-runc}"
[ "$(id -u)" -eq 0 ] || die "scripts/image.sh runs podman as root (rootful storage, host network); run it as root"

ensure_node
apt_install podman buildah debootstrap "$runtime"
cache="$(cache_root)"
pm() { podman --runtime "$runtime" "$@"; }

# The Debian archive holding $suite main: the one apt already uses (a machine that reaches only
# its own mirror debootstraps from there), and the security archive beside it, if any.
mirror="${LESSONCAST_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(debian_source_list "$suite" | head -n 1 | awk '{ print $(NF - 2) }')"
  [ -n "$mirror" ] || die "no Debian mirror for $suite in the apt sources; set LESSONCAST_DEBIAN_MIRROR"
fi
security="$(apt_source_entries | awk -F '\t' -v s="$suite-security" '(" " $2 " ") ~ (" " s " ") { sub(/\/+$/, "", $1); print $1; exit }')"
arch="$(dpkg --print-architecture)"

# make_base DIR : the base root filesystem in DIR. Its text is part of the cache key.
make_base() {
  local dir=$1 node_bin npm_tmp
  debootstrap --variant=minbase --include=ca-certificates --components=main --arch "$arch" \
    "$suite" "$dir" "$mirror" >&2 || die "debootstrap of $suite from $mirror failed (see above)"
  # apt in the image (the Dockerfile installs ffmpeg and the worker's libraries) reads the same
  # mirror, with the updates and security suites as the official images have them.
  rm -f "$dir/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror" "$suite" "$suite"
    [ -z "$security" ] ||
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security" "$suite"
  } > "$dir/etc/apt/sources.list.d/debian.sources"
  # No downloaded .deb stays behind in an image layer (the official Debian images do the same).
  printf 'APT::Keep-Downloaded-Packages "false";\n' > "$dir/etc/apt/apt.conf.d/90lessoncast-image"
  # dpkg without a sync per file: an image build that stops halfway is thrown away anyway, and
  # the syncs made the Dockerfile's apt step (ffmpeg: ~200 packages) several times slower.
  printf 'force-unsafe-io\n' > "$dir/etc/dpkg/dpkg.cfg.d/90lessoncast-image"
  # The container engine provides these; debootstrap copied the host's.
  rm -f "$dir/etc/resolv.conf" "$dir/etc/hostname"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log "$dir"/tmp/*
  # Node where the official images have it, from the pin the scripts use (npm package, checked).
  node_bin="$(node_pinned_bin)" || exit 1
  install -D -m 755 "$node_bin/node" "$dir/usr/local/bin/node"
  # npm from its own pin, installed as the official images install it.
  npm_tmp="$(mktemp -d)"
  cp "$here/image/package.json" "$here/image/package-lock.json" "$npm_tmp/"
  npm ci --prefix "$npm_tmp" --ignore-scripts --no-audit --no-fund >&2 || { rm -rf "$npm_tmp"; die "could not install the pinned npm (scripts/image/)"; }
  mkdir -p "$dir/usr/local/lib/node_modules"
  cp -a "$npm_tmp/node_modules/npm" "$dir/usr/local/lib/node_modules/npm"
  rm -rf "$npm_tmp"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
}

# base_image : makes (or finds) the base image; prints its name.
base_image() {
  local key name tarball tmp t0
  key="$({
    declare -f make_base
    cat "$here/node/package.json" "$here/node/package-lock.json" "$here/image/package.json" "$here/image/package-lock.json"
    printf '%s %s %s %s\n' "$suite" "$arch" "$mirror" "$security"
  } | sha256sum | cut -c1-12)"
  name="localhost/lessoncast-base:$suite-$key"
  tarball="$cache/image/base-$suite-$arch-$key.tar"
  mkdir -p "$cache/image"
  exec 8> "$cache/image/.base.lock"
  flock 8
  if [ ! -f "$tarball" ]; then
    t0=$(date +%s)
    log "base image: debootstrap $suite ($arch, minbase) from $mirror, Node and npm from the npm registry"
    tmp="$(mktemp -d "$cache/image/rootfs.XXXXXX")"
    make_base "$tmp/rootfs"
    tar --numeric-owner --xattrs -C "$tmp/rootfs" -cf "$tmp/base.tar" . || die "cannot pack the base root filesystem"
    mv "$tmp/base.tar" "$tarball"
    rm -rf "$tmp"
    # An older recipe's root filesystem is not used again.
    find "$cache/image" -maxdepth 1 -name "base-$suite-$arch-*.tar" ! -name "${tarball##*/}" -delete
    log "base root filesystem: $tarball ($(du -h "$tarball" | cut -f1), $(($(date +%s) - t0)) s)"
  fi
  if ! pm image exists "$name"; then
    log "importing $tarball as $name"
    pm import --message "lessoncast base: Debian $suite minbase, Node and npm pinned in scripts/" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' "$tarball" "$name" >&2 || die "podman import of $tarball failed"
  fi
  flock -u 8
  printf '%s\n' "$name"
}

# build_image BASE : podman build of the Dockerfile on BASE, tagged $image.
build_image() {
  local base=$1 t0
  local ca=() npm_cache
  mkdir -p "$cache/mediasoup-worker" "$cache/sources"
  # The host's npm cache (filled by setup's npm ci): the build's npm ci takes the tarballs it
  # holds, checked against the lock as always, and fetches the rest from the registry.
  npm_cache="$(npm config get cache)"
  mkdir -p "$npm_cache"
  # The CA file Node trusts here beyond its own (an intercepting proxy's) is trusted by the
  # build's npm too; the image does not keep it.
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
    [ -r "$NODE_EXTRA_CA_CERTS" ] || die "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS is not readable"
    ca=(-v "$NODE_EXTRA_CA_CERTS:/run/lessoncast-build-ca.pem:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/lessoncast-build-ca.pem)
  fi
  t0=$(date +%s)
  log "podman build $image on $base"
  # --format docker keeps the Dockerfile's HEALTHCHECK (OCI image config has none).
  pm build --format docker --network host --pull=never \
    --build-arg "BUILD_IMAGE=$base" --build-arg "RUNTIME_IMAGE=$base" \
    -v "$cache/mediasoup-worker:/opt/lessoncast-cache/mediasoup-worker" \
    -v "$cache/sources:/opt/lessoncast-cache/sources" -v "$npm_cache:/root/.npm" "${ca[@]}" \
    --label lessoncast.built-by=scripts/image.sh \
    -t "$image" -f Dockerfile . >&2 || die "podman build of $image failed (see above)"
  # Each build leaves the layers of the one before untagged; those of a day ago go (the label
  # keeps other projects' images out of it). The layers of recent builds stay: podman's cache.
  pm image prune --force --filter label=lessoncast.built-by=scripts/image.sh --filter until=24h >/dev/null ||
    log "WARNING: podman image prune failed; old layers stay in podman's store"
  log "built $image in $(($(date +%s) - t0)) s: $(pm image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

# check_image : runs $image and checks it is ready; the container is removed whatever happens.
check_image() {
  local name="lessoncast-check-$$" port hard_nofile nproc pid_max
  port="$(free_port)"
  # podman asks for nofile and nproc limits of 1048576 by default, which a root without
  # CAP_SYS_RESOURCE cannot set; ask for the caller's own (nproc: podman caps it at pid_max).
  hard_nofile="$(ulimit -Hn)"
  nproc="$(ulimit -Hu)"
  pid_max="$(cat /proc/sys/kernel/pid_max)"
  [ "$hard_nofile" = unlimited ] && hard_nofile=1048576
  { [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; } && nproc="$pid_max"
  trap 'pm rm --force --volumes --time 5 "'"$name"'" >/dev/null 2>&1 || true' EXIT
  log "starting $name on 127.0.0.1:$port"
  # --health-interval disable: no periodic healthcheck timer (podman makes it with systemd, which
  # a build machine may not run); the check runs the image's HEALTHCHECK once itself. Without
  # systemd, podman 4.3 still logs "unable to get systemd connection to add healthchecks": harmless.
  pm run --detach --name "$name" --network host --health-interval disable \
    --ulimit "nofile=$hard_nofile:$hard_nofile" --ulimit "nproc=$nproc:$nproc" \
    -e LESSONCAST_HTTP_HOST=127.0.0.1 -e "LESSONCAST_HTTP_PORT=$port" \
    -e LESSONCAST_MEDIA_LISTEN_IP=127.0.0.1 -e LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT=0 \
    -e LESSONCAST_MEDIA_WORKERS=1 \
    -e "LESSONCAST_AUTH_TOKEN_SECRET=$(head -c 36 /dev/urandom | base64)" \
    "$image" >/dev/null || die "podman run of $image failed (see above)"
  if ! node -e '
    const [url, seconds] = [process.argv[1], Number(process.argv[2])];
    const until = Date.now() + seconds * 1000;
    (async () => {
      let last = "no answer";
      while (Date.now() < until) {
        try {
          const r = await fetch(url);
          const body = await r.json();
          last = `${r.status} ${JSON.stringify(body)}`;
          if (r.status === 200 && body.status === "ready" && body.checks.workers === "ok") {
            console.error(`[lessoncast] GET /readyz: ${last}`);
            return;
          }
        } catch (err) { last = String(err.cause ?? err); }
        await new Promise((ok) => setTimeout(ok, 500));
      }
      console.error(`[lessoncast] GET /readyz not ready after ${seconds} s: ${last}`);
      process.exit(1);
    })();' "http://127.0.0.1:$port/readyz" 60; then
    pm logs "$name" >&2 || true
    die "the container of $image did not become ready"
  fi
  pm healthcheck run "$name" >&2 || { pm logs "$name" >&2 || true; die "the image's HEALTHCHECK failed in $name"; }
  log "HEALTHCHECK: healthy"
  pm exec "$name" ffmpeg -hide_banner -version | head -n 1 >&2 || die "ffmpeg does not run in $image"
  [ "$(pm exec "$name" id -un)" = lessoncast ] || die "$image does not run as the user lessoncast"
  pm rm --force --volumes --time 5 "$name" >/dev/null || die "could not remove $name"
  trap - EXIT
  log "checked $image: ready, worker alive, healthcheck and ffmpeg run, user lessoncast; container removed"
}

base="$(base_image)"
if [ "$mode" = base ]; then printf '%s\n' "$base"; exit 0; fi
build_image "$base"
[ "$mode" = check ] && check_image
printf '%s\n' "$image"
