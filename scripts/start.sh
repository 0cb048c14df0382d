#!/usr/bin/env bash
# One command from a fresh machine to a running lessoncast (embedded defaults:
# in-process live state, recordings under ./recordings, loopback only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$here/.."
# The server, setup and tsc all run on this node (the pinned Node 24 if the system's is older).
ensure_node
bash scripts/setup.sh run
npx tsc -p tsconfig.build.json
exec node dist/main.js
