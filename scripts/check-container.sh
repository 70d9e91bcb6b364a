#!/usr/bin/env bash
# The Dockerfile's recipe, run without a Docker engine: its install, build and start commands,
# on the image's Node version, in temp folders standing in for each stage's /app. Then
# GET /healthz must answer 200 within 30 s, the HEALTHCHECK command and scripts/backup.mjs must
# work, and SIGTERM must end the server with exit code 0 within 10 s.
#
# The Dockerfile's commands are mirrored below, each under a comment quoting its line. First the
# Dockerfile is compared with its instructions as written here: change one, change the other.
# Not emulated: apt-get (the compiler comes with this machine), USER node and file ownership.
#
# Usage: bash scripts/check-container.sh   (node on PATH must be the FROM line's version;
#        scripts/test-node24.sh container DIR sets that up)
#   PREBUILT_SQLITE=DIR  better-sqlite3's build/ folder, compiled for this Node from the same
#                        package-lock.json: `npm ci` skips install scripts and reuses it
#                        instead of compiling again (about a minute)
#   KEEP_TMP=1           keep the temp folders
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[container] %s\n' "$*"; }
fail() { log "FAILED: $*"; exit 1; }
ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

log "comparing the Dockerfile's instructions with the ones this check mirrors"
if ! diff <(grep -Ev '^[[:space:]]*(#|$)' "$REPO/Dockerfile") - <<'EXPECTED'; then
FROM node:24.18.1-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev
FROM node:24.18.1-bookworm-slim
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 DATABASE_PATH=/data/gateway.db
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/migrations ./migrations
COPY package.json ./
COPY scripts/backup.mjs ./scripts/backup.mjs
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=4", "dist/src/main.js"]
EXPECTED
  fail "the Dockerfile changed (diff above: < Dockerfile, > this check); update scripts/check-container.sh with it"
fi

image_node="v$(sed -n 's/^FROM node:\([0-9.]*\)-.*/\1/p' "$REPO/Dockerfile" | head -n 1)"
[[ "$(node --version)" == "$image_node" ]] || fail "node on PATH is $(node --version), the image has $image_node"
log "node $(node --version) at $(command -v node), as in the image"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/gw-container.XXXXXX")"
BUILD="$TMP/build/app" APP="$TMP/final/app" DATA="$TMP/final/data"
SERVER_PID=''
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID"; fi
  if [[ "${KEEP_TMP:-}" == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
mkdir -p "$BUILD" "$APP" "$DATA"
# Node looks for packages in every parent folder: none may have a node_modules (the image has none).
d="$TMP"; while [[ "$d" != / ]]; do d="$(dirname "$d")"; [[ ! -e "${d%/}/node_modules" ]] || fail "${d%/}/node_modules would hide missing packages"; done

# Host environment for the build, minus what would change npm's behaviour (npm passes its own
# npm_config_* and npm_package_* to scripts; NODE_ENV may be set by the caller).
build_env=(env -u NODE_ENV -u NODE_OPTIONS)
while IFS= read -r name; do build_env+=(-u "$name"); done < <(compgen -e | grep -E '^npm_(package|lifecycle|command|config_(omit|production|include|only))' || true)

log "build stage in $BUILD"
# COPY package.json package-lock.json ./
cp "$REPO/package.json" "$REPO/package-lock.json" "$BUILD/"
# RUN npm ci
cd "$BUILD"
if [[ -n "${PREBUILT_SQLITE:-}" ]]; then
  [[ -f "$PREBUILT_SQLITE/Release/better_sqlite3.node" ]] || fail "no Release/better_sqlite3.node in PREBUILT_SQLITE=$PREBUILT_SQLITE"
  log "RUN npm ci  (install scripts skipped: better-sqlite3's build/ is copied from $PREBUILT_SQLITE)"
  "${build_env[@]}" npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp -R "$PREBUILT_SQLITE" node_modules/better-sqlite3/build
else
  log "RUN npm ci  (compiles better-sqlite3)"
  "${build_env[@]}" npm ci --no-audit --no-fund --loglevel=error
fi
# COPY tsconfig.json tsconfig.build.json ./   COPY src ./src   COPY migrations ./migrations
cp "$REPO/tsconfig.json" "$REPO/tsconfig.build.json" "$BUILD/"
cp -R "$REPO/src" "$BUILD/src"
cp -R "$REPO/migrations" "$BUILD/migrations"
# RUN npm run build && npm prune --omit=dev
log "RUN npm run build && npm prune --omit=dev"
"${build_env[@]}" npm run build --silent
"${build_env[@]}" npm prune --omit=dev --no-audit --no-fund --loglevel=error

log "final stage in $APP"
# COPY --from=build /app/node_modules ./node_modules   (and dist, migrations)
cp -R "$BUILD/node_modules" "$BUILD/dist" "$BUILD/migrations" "$APP/"
# COPY package.json ./   COPY scripts/backup.mjs ./scripts/backup.mjs
cp "$REPO/package.json" "$APP/"
mkdir -p "$APP/scripts" && cp "$REPO/scripts/backup.mjs" "$APP/scripts/"
# The operator console's files travel in dist/ (npm run build copies src/console there): the image has no src/.
for f in index.html console.js console.css; do
  [[ -f "$APP/dist/src/console/$f" ]] || fail "dist/src/console/$f is missing: npm run build copies src/console into dist/src/console"
done
[[ ! -e "$APP/node_modules/vitest" ]] || fail "npm prune --omit=dev left devDependencies (vitest) in node_modules"
log "node_modules: $(ls "$APP/node_modules" | wc -l) top-level entries, no devDependencies"
rm -rf "$BUILD"

# ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 DATABASE_PATH=/data/gateway.db, except:
# loopback only and a free port; /data is $DATA. Production needs the four keys below: they are
# generated, and kie.ai is a closed loopback port (nothing is sent out).
PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
secret() { node -e "console.log(require('crypto').randomBytes(24).toString('base64url'))"; }
run_env=(env -i "PATH=$PATH" "HOME=$TMP" NODE_ENV=production "PORT=$PORT" HOST=127.0.0.1
  "DATABASE_PATH=$DATA/gateway.db" "PUBLIC_BASE_URL=http://127.0.0.1:$PORT" KIE_BASE_URL=http://127.0.0.1:9
  "KIE_API_KEY=$(secret)" "API_KEYS=check-$(secret)" "CALLBACK_SECRET=$(secret)" "ADMIN_API_KEYS=admin-$(secret)")
log "env NODE_ENV=production HOST=127.0.0.1 PORT=$PORT DATABASE_PATH=$DATA/gateway.db PUBLIC_BASE_URL=http://127.0.0.1:$PORT KIE_BASE_URL=http://127.0.0.1:9 (+ generated KIE_API_KEY, API_KEYS, CALLBACK_SECRET, ADMIN_API_KEYS)"

# CMD ["node", "--max-semi-space-size=4", "dist/src/main.js"]
log 'CMD ["node", "--max-semi-space-size=4", "dist/src/main.js"]'
cd "$APP"
"${run_env[@]}" node --max-semi-space-size=4 dist/src/main.js > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
started=$(ms)
server_log() { sed 's/^/  [server] /' "$TMP/server.log"; }

log "polling GET http://127.0.0.1:$PORT/healthz (30 s at most)"
until status="$(curl -s -o "$TMP/healthz" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz")" && [[ "$status" == 200 ]]; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    rc=0; wait "$SERVER_PID" || rc=$?
    server_log; fail "the server exited during start-up with code $rc"
  fi
  (( $(ms) - started < 30000 )) || { server_log; fail "no 200 from /healthz within 30 s (last status ${status:-none})"; }
  sleep 0.25
done
log "GET /healthz -> 200 $(cat "$TMP/healthz"), $(($(ms) - started)) ms after start"

# The operator console (ADMIN_API_KEYS is set): its page, from the image's dist/, with its policy.
console_headers="$(curl -s -D - -o "$TMP/console.html" --max-time 2 "http://127.0.0.1:$PORT/console/")"
grep -q '^HTTP/1.1 200' <<<"$console_headers" || { echo "$console_headers"; server_log; fail "GET /console/ did not answer 200"; }
grep -qi "^content-security-policy: default-src 'none'" <<<"$console_headers" || { echo "$console_headers"; fail "GET /console/ has no Content-Security-Policy"; }
grep -q 'console.js' "$TMP/console.html" || fail "GET /console/ is not the console's page"
log "GET /console/ -> 200, with its Content-Security-Policy"

# HEALTHCHECK ... CMD node -e "fetch(...)"   (shell form, run as Docker does: sh -c)
healthcheck="$(sed -n 's/^HEALTHCHECK .* CMD //p' "$REPO/Dockerfile")"
rc=0; "${run_env[@]}" sh -c "$healthcheck" || rc=$?
[[ "$rc" == 0 ]] || { server_log; fail "the HEALTHCHECK command failed with code $rc"; }
log "HEALTHCHECK command exited 0"

# README: docker compose exec gateway node scripts/backup.mjs /data/backups/...
backup="$("${run_env[@]}" node scripts/backup.mjs "$DATA/backups/check.db" 2>&1)" || { echo "$backup"; fail "scripts/backup.mjs failed"; }
log "node scripts/backup.mjs while the server runs:"
sed 's/^/  [backup] /' <<<"$backup"

# STOPSIGNAL SIGTERM: docker stop sends it, then SIGKILL after 10 s.
log "sending SIGTERM to the server (pid $SERVER_PID)"
kill -TERM "$SERVER_PID"
stop_start=$(ms)
while kill -0 "$SERVER_PID" 2>/dev/null; do
  (( $(ms) - stop_start < 10000 )) || { server_log; fail "the server was still running 10 s after SIGTERM"; }
  sleep 0.1
done
rc=0; wait "$SERVER_PID" || rc=$?
SERVER_PID=''
[[ "$rc" == 0 ]] || { server_log; fail "the server exited with code $rc after SIGTERM (expected 0)"; }
log "server exited 0, $(($(ms) - stop_start)) ms after SIGTERM; its output:"
server_log
log "OK: the Dockerfile's recipe builds, serves /healthz and stops cleanly on Node $(node --version)"
