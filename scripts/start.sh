#!/usr/bin/env bash
# One command from a fresh machine to a running lessoncast (embedded defaults:
# in-process live state, recordings under ./recordings, loopback only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$here/.."
# The server, setup and the build all run on this node (the pinned Node 24 if the system's is older).
ensure_node
# Everything that installs or compiles happens here, before the server starts: the server finds
# the worker setup recorded (.lessoncast/worker-bin) and runs the built dist/.
bash scripts/setup.sh run
bash scripts/build.sh
exec node dist/main.js
