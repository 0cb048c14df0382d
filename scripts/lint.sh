#!/usr/bin/env bash
# `npm run lint`: Prettier's check and ESLint (typescript-eslint, type-aware) over every
# TypeScript source. `npm run lint -- --fix` rewrites what both tools can fix themselves.
# The tools live in scripts/lint/ with their own lockfile: typescript-eslint needs TypeScript's
# JavaScript API (TypeScript <= 6.0), while the project compiles with TypeScript 7.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
cd "$here/.."
ensure_node

tools="$here/lint"
stamp="$tools/node_modules/.lessoncast-lock"
if [ ! -f "$stamp" ] || ! cmp -s "$tools/package-lock.json" "$stamp"; then
  log "installing the lint tools (scripts/lint/package-lock.json)"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp "$tools/package-lock.json" "$stamp"
fi

sources=("src/**/*.ts" "kit/**/*.ts" "test/**/*.ts" "bench/**/*.ts" "web/src/**/*.ts")
if [ "${1:-}" = "--fix" ]; then
  "$tools/node_modules/.bin/prettier" --log-level warn --write "${sources[@]}"
  "$tools/node_modules/.bin/eslint" --config "$tools/eslint.config.mjs" --fix src kit test bench web/src
  "$tools/node_modules/.bin/prettier" --log-level warn --write "${sources[@]}"
else
  "$tools/node_modules/.bin/prettier" --log-level warn --check "${sources[@]}"
  "$tools/node_modules/.bin/eslint" --config "$tools/eslint.config.mjs" --max-warnings 0 src kit test bench web/src
fi
log "lint clean"
