#!/usr/bin/env bash
# The Node lessoncast runs on (>= 22: the system's, else the pinned Node 24 from scripts/node/,
# installed on first use), for running things by hand:
#   scripts/use-node.sh                    prints its bin directory:
#                                          export PATH="$(scripts/use-node.sh):$PATH"
#   scripts/use-node.sh CMD [ARG...]       runs CMD with it first on PATH, e.g.
#                                          scripts/use-node.sh npx tap test/<file>.test.ts
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
ensure_node
[ $# -gt 0 ] && exec "$@"
dirname "$(command -v node)"
