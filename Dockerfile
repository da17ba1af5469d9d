# closeloop: one image, two roles (CONTRACT §1; docs/decisions/0008-tools-and-image.md).
#   docker build -t closeloop .
#   docker run -e ROLE=api    -e DATABASE_URL=… -e REDIS_URL=… -p 3000:3000 closeloop
#   docker run -e ROLE=worker -e PORT=3001 -e DATABASE_URL=… -e REDIS_URL=… closeloop
#   docker run --rm -e DATABASE_URL=… closeloop node src/ops/db.mjs migrate
# The image holds the built hub only: no tools/ (simulator, demo, bench), no tests, no dev dependencies.
# (Not buildable on the development machines, which have no Docker engine; see README.)

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: dev dependencies, Prisma client, nest build ------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# --ignore-scripts: no dependency needs its install script (npm 11 on the development machines
# skips them all), and @prisma/engines' postinstall would try to download from binaries.prisma.sh.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY prisma ./prisma
COPY src ./src
# `npm run build` = prisma generate (offline: PRISMA_SCHEMA_ENGINE_BINARY names an existing file, so
# the CLI downloads no schema engine; generate never runs it) + nest build (tsconfig.build.json: src/
# only) → dist/src, the generated client compiled into dist/src/generated.
RUN npm run build

# ---- runtime: production dependencies, the built hub, migrations --------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    ROLE=all \
    PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# src/ops/db.mjs (npm run db:migrate) drives Prisma's schema engine compiled to WebAssembly; that
# package is a devDependency (pinned to the Prisma version), so it comes from the build stage. Its
# other imports (pg, @prisma/adapter-pg, @prisma/driver-adapter-utils) are production dependencies.
COPY --from=build /app/node_modules/@prisma/schema-engine-wasm ./node_modules/@prisma/schema-engine-wasm
COPY --from=build /app/dist ./dist
COPY prisma/schema.prisma ./prisma/schema.prisma
COPY prisma/migrations ./prisma/migrations
COPY src/ops/db.mjs ./src/ops/db.mjs

USER node
EXPOSE 3000
# Liveness (GET /health/live); both roles serve it on $PORT. No curl in slim images: node's fetch.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The role comes from ROLE at run time (api, worker or all). Heap budget as npm run start:api
# (1024 MB for an api) and npm start (256 MB otherwise); README, Operations. exec: node is PID 1
# and gets SIGTERM for its graceful shutdown.
CMD ["sh", "-c", "if [ \"$ROLE\" = api ]; then heap=1024; else heap=256; fi; exec node --max-old-space-size=$heap dist/src/main.js"]
