# lessoncast — multi-stage image on Debian bookworm.
#
#   docker build -t lessoncast .
#   docker run --network host -v /srv/lessoncast/recordings:/recordings \
#     -e LESSONCAST_AUTH_TOKEN_SECRET=... -e LESSONCAST_MEDIA_ANNOUNCED_ADDRESS=<public ip> lessoncast
#
# Built and run for real on the development machines and in CI (.ci/run) by
# `npm run image` (scripts/image.sh check) with Debian's podman, where no Docker engine runs and
# no container registry is reachable: the base is then Debian bookworm made by debootstrap from
# the Debian mirror, with the Node pinned in scripts/node/ and the npm pinned in scripts/image/,
# passed as BUILD_IMAGE and RUNTIME_IMAGE; the check starts a container and asks GET /readyz.
# Where a registry is reachable the defaults below, the official Node images, apply as they are.
#
# Build stage: compiles TypeScript and builds mediasoup-worker from the npm package's own sources
# against Debian libraries (scripts/build-worker.sh, ~12 minutes on 2 cores), so it needs only a
# Debian mirror and an npm registry: the same offline path as CI. The worker build is cached
# under LESSONCAST_CACHE_DIR=/opt/lessoncast-cache, keyed by mediasoup version, recipe and Debian
# release: a build that mounts a cache holding that key there takes the binary instead of
# compiling it (scripts/image.sh mounts the host's ~/.cache/lessoncast/mediasoup-worker with
# podman build -v; with none mounted, the build compiles it). The runtime stage carries only what
# the binary links, and ffmpeg (Debian's, with its ~200 dependencies: ~500 MB of the image).
#
# Node: both stages run Node 24 LTS, the Node the scripts pin for machines whose node is older
# than 22 (scripts/node/package.json; mediasoup 3.32 needs >= 22). Keep the major of the default
# images in step with that pin; either base already carries it, so the build never runs
# ensure_node's fetch.
ARG BUILD_IMAGE=node:24-bookworm
ARG RUNTIME_IMAGE=node:24-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
ENV LESSONCAST_CACHE_DIR=/opt/lessoncast-cache
# Where TLS to the npm registry passes a proxy that presents its own CA (an intercepting egress
# proxy), the PEM file of that CA, mounted into the build: scripts/image.sh passes the host's
# NODE_EXTRA_CA_CERTS this way. Unset, Node trusts its own CA store as usual.
ARG NODE_EXTRA_CA_CERTS
COPY package.json package-lock.json ./
# Only what npm ci and the worker build read, so that editing another script keeps this layer.
COPY scripts/build-worker.sh scripts/apt-wait.sh ./scripts/
COPY scripts/worker ./scripts/worker
# MEDIASOUP_WORKER_BIN set during npm ci makes mediasoup's postinstall skip its GitHub download.
RUN MEDIASOUP_WORKER_BIN="$(bash scripts/build-worker.sh --print-path | tail -n 1)" npm ci --no-audit --no-fund \
 && bash scripts/build-worker.sh | tail -n 1 > /tmp/worker-path \
 && cp "$(cat /tmp/worker-path)" /app/mediasoup-worker
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY config ./config
COPY web ./web
# npm run build: dist/ and web/dist/, as npm start builds them.
RUN bash scripts/build.sh \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${RUNTIME_IMAGE} AS runtime
# Libraries mediasoup-worker links (Debian's), and ffmpeg for recording. mediasoup 3.32's worker
# no longer links libusrsctp or abseil.
# libsrtp2-1/libnss3/libnspr4 are needed only if the worker build fell back to
# Debian's libsrtp2 (by default libsrtp is linked in statically; see
# scripts/worker/README.md).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ffmpeg libssl3 libuv1 ca-certificates tini \
      libsrtp2-1 libnss3 libnspr4 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY --from=build /app/config ./config
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/scripts/lessoncast.mjs ./scripts/lessoncast.mjs
COPY --from=build /app/mediasoup-worker /usr/local/bin/mediasoup-worker
RUN groupadd --system lessoncast && useradd --system --gid lessoncast --home /app lessoncast \
 && mkdir -p /recordings /data /app/.lessoncast && chown lessoncast:lessoncast /recordings /data /app/.lessoncast
ENV NODE_ENV=production \
    MEDIASOUP_WORKER_BIN=/usr/local/bin/mediasoup-worker \
    LESSONCAST_HTTP_HOST=0.0.0.0 \
    LESSONCAST_MEDIA_LISTEN_IP=0.0.0.0 \
    LESSONCAST_RECORDING_DIR=/recordings \
    LESSONCAST_CATALOG_SQLITE_PATH=/data/catalog.db
USER lessoncast
# Recordings, and the embedded catalog (SQLite) when no catalog.url names a PostgreSQL.
VOLUME ["/recordings", "/data"]
# HTTP + WebSocket signalling; WebRtcServer ports (worker i: 44000+i, UDP and TCP).
EXPOSE 8080/tcp 44000-44063/udp 44000-44063/tcp
# On the port given by LESSONCAST_HTTP_PORT when the container is started with one (host network).
HEALTHCHECK --interval=15s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.LESSONCAST_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/main.js"]
