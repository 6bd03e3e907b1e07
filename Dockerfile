# syntax=docker/dockerfile:1
# HAProxy SPOE authorization agent for Prefect.
#   docker build -t spoe-authz .
#   docker run --init -p 12345:12345 -p 9464:9464 \
#     -v /etc/spoe-authz:/etc/spoe-authz:ro spoe-authz \
#     node dist/cli.js serve --config /etc/spoe-authz/config.yaml
# Without a config (or AUTHZ_ISSUER) it exits 2 and says what to set: the development
# issuer is a default on loopback only, never on the 0.0.0.0 this image listens on.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependency tree, TypeScript -> dist/ ----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first: the npm ci layer is reused until dependencies change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: compiled JS + production dependencies only -------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="spoe-authz" \
      org.opencontainers.image.description="HAProxy SPOE authorization agent (JWT/JWKS) for Prefect" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
# Production dependencies from the lockfile; none of them needs an install
# script, so none is run.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/dist ./dist

# Files stay owned by root: the agent cannot rewrite its own code.
USER node

# Containers listen on all interfaces (the defaults are loopback-only).
ENV AUTHZ_LISTEN=0.0.0.0:12345 \
    AUTHZ_METRICS_LISTEN=0.0.0.0:9464
# 12345: SPOP (HAProxy's spoe-agents backend); 9464: /metrics /healthz /readyz
EXPOSE 12345 9464

# No curl in the slim image: Node's own fetch. /healthz = process alive and
# serving; HAProxy's spop-check covers the SPOP port itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz',{signal:AbortSignal.timeout(3000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# The agent drains in-flight requests on SIGTERM (docker stop).
STOPSIGNAL SIGTERM
# Old-generation collections at 1.25x the live heap (RSS stays flat while the token cache turns
# over) and a young generation of 8 MB semi-spaces instead of 16: ~20 MB less RSS for ~10 % more
# CPU per cached decision (BENCHMARKS.md, "Memory").
CMD ["node", "--heap-growing-percent=25", "--max-semi-space-size=8", "dist/cli.js", "serve"]
