#!/usr/bin/env bash
# Builds what a started server runs (npm run build): dist/ from src/ (tsconfig.build.json) and
# the browser pages into web/dist/ (scripts/build-web.mjs). Expects setup's node modules.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$here/.."
ensure_node
# From scratch: tsc leaves behind the output of a source file that was moved or deleted.
rm -rf dist
npx tsc -p tsconfig.build.json
node scripts/build-web.mjs
log "built dist/ and web/dist/"
