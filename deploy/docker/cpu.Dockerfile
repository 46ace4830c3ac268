# syntax=docker/dockerfile:1.7
# dptrain CPU image: coordinator (which needs no GPU) and CPU workers.
#
# Backends, best first: the native oneDNN backend (@dptrain/backend-native, built here against Debian's
# libdnnl-dev; the runtime keeps libdnnl2), tfjs-node (optional dependency), then wasm.
#
# Build from the repository root:   docker build -f deploy/docker/cpu.Dockerfile -t dptrain:cpu .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libdnnl-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/dptrain
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/backend-native/package.json packages/backend-native/
COPY packages/client/package.json packages/client/
COPY packages/worker/package.json packages/worker/
COPY packages/coordinator/package.json packages/coordinator/
COPY packages/dashboard/package.json packages/dashboard/
COPY packages/cli/package.json packages/cli/
RUN npm ci --omit=dev --include=optional --foreground-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY packages ./packages
# Compile the oneDNN addon; --strict makes a failed build fail the image instead of falling back to wasm.
RUN node packages/backend-native/scripts/build-native.mjs --force --strict \
 && ls packages/backend-native/build/Release/dptrain_native.node

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="dptrain (CPU)" \
      org.opencontainers.image.description="dptrain coordinator/worker on CPU (oneDNN native backend, tfjs-node, wasm), Node 20"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libdnnl2 libgomp1 tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/dptrain
COPY --from=build /opt/dptrain /opt/dptrain
ENV NODE_ENV=production
RUN useradd --system --uid 10001 --create-home dptrain \
 && mkdir -p /data /runs && chown dptrain /runs
USER dptrain
VOLUME ["/data", "/runs"]
# 7420: coordinator WebSocket (workers, dashboard); 9464: coordinator HTTP (/metrics, /healthz, /readyz).
EXPOSE 7420 9464
ENTRYPOINT ["tini", "--", "node", "/opt/dptrain/packages/cli/bin/dptrain.js"]
CMD ["--help"]
