# syntax=docker/dockerfile:1.7
# One image for every Node process of the order system (api, worker, simulators, migrate);
# docker-compose.yml picks the entry point per service.

FROM node:20.19-bookworm-slim AS build
WORKDIR /src
# the whole workspace: npm ci needs every workspace's package.json, tsc -b every tsconfig
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund
# What runs: each workspace's package.json, dist (the api's and worker's bundles in it:
# scripts/src/bundle-apps.ts) and own node_modules (versions npm could
# not hoist, e.g. the api's ajv), the config defaults, and the stock Lua scripts, which
# libs/stock reads from src/lua at runtime (tsc does not copy them).
RUN set -eu; mkdir -p /out/config; \
    cp package.json /out/; cp config/*.json /out/config/; \
    for pkg in libs/* apps/* scripts; do \
      [ -f "$pkg/package.json" ] || continue; \
      mkdir -p "/out/$pkg"; cp "$pkg/package.json" "/out/$pkg/"; \
      for built in dist node_modules; do if [ -d "$pkg/$built" ]; then cp -a "$pkg/$built" "/out/$pkg/"; fi; done; \
    done; \
    mkdir -p /out/libs/stock/src; cp -r libs/stock/src/lua /out/libs/stock/src/; \
    find /out -name '*.tsbuildinfo' -delete

FROM node:20.19-bookworm-slim AS runtime
ENV NODE_ENV=production
# a larger young generation for every process (SERVICE_NODE_OPTIONS in libs/config: why)
ENV NODE_OPTIONS=--max-semi-space-size=64
WORKDIR /app
# node_modules holds the workspace links (@orders/* -> ../../libs/*), resolved against /app
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /out ./
# the code is root's and read-only to the process that runs it
USER node
EXPOSE 3000 9464 3101 3102
CMD ["node", "apps/api/dist/main.bundle.js"]
