#!/usr/bin/env bash
# One command from a fresh machine to a running lessoncast (embedded defaults:
# in-process live state, recordings under ./recordings, loopback only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
bash scripts/setup.sh run
npx tsc -p tsconfig.build.json
exec node dist/main.js
