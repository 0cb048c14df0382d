#!/usr/bin/env bash
# One command from a fresh machine to a full test run: installs what the tests need,
# starts a Redis on a free loopback port for them, type-checks, builds dist/ (the tests that
# start lessoncast as a process run it, as production does), and runs the suite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$root"
t0=$(date +%s)
# Before anything runs node: setup, tsc and tap inherit it through PATH, and tap starts every
# test file on the node it runs on itself.
ensure_node
bash scripts/setup.sh test
log "setup took $(( $(date +%s) - t0 )) s"

redis_pid=""
cleanup() { [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
if [ -z "${TEST_REDIS_URL:-}" ]; then
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning >/dev/null 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" ping >/dev/null 2>&1 || die "redis-server did not start on port $port"
  export TEST_REDIS_URL="redis://127.0.0.1:$port"
  log "redis for tests: $TEST_REDIS_URL"
fi

log "type-check"
npx tsc -p tsconfig.json --noEmit && npx tsc -p web/tsconfig.json --noEmit
log "lint (ESLint, Prettier)"
bash scripts/lint.sh
log "build"
bash scripts/build.sh
# tap runs each test file with the plugin set it was built with; npm ci leaves tap's default set,
# whose TypeScript plugin (ts-node) cannot load TypeScript 7. Build the set package.json names
# (no @tapjs/typescript: tests run through tsx) before the first run, not during it.
log "tap build"
npx tap build >&2
log "tests"
# The worker comes from where setup recorded it (.lessoncast/worker-bin), as for npm start.
npx tap "$@"
log "whole run took $(( $(date +%s) - t0 )) s"
