# syntax=docker/dockerfile:1
# better-sqlite3 is a native module: it is built and run on the same base image.
# Node 24 is pinned to 24.18.1: better-sqlite3 12 compiled against 24.19+ headers aborts the
# process when a statement is garbage-collected (nodejs/node#65446, WiseLibs/better-sqlite3#1515).
# Move on once that is fixed, or with better-sqlite3 13 when Node 20 support can go.
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
# HOST is set, not left to the default (127.0.0.1 outside production): the container's interfaces
# are its own, and the published port decides who reaches it. No .env is copied into the image.
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
