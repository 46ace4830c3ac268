# syntax=docker/dockerfile:1.7
# dptrain GPU image: workers on NVIDIA GPUs (the coordinator, which needs no GPU, runs from the CPU image).
#
# @tensorflow/tfjs-node-gpu 4.22 links libtensorflow 2.9.1, which needs exactly CUDA 11.2 and cuDNN 8.1 at run time,
# hence the CUDA 11.2 + cuDNN 8 runtime base (its cuDNN is 8.1.x). The host needs only the NVIDIA driver (>= 460.32)
# and the NVIDIA Container Toolkit; one container (or one process) per GPU.
#
# The CUDA 11.2 images are deprecated and NVIDIA deletes such tags: the base is pinned by digest, which is a build
# argument because no digest could be verified where this file was written. Get it once, mirror the image to a
# registry you control, and build from the mirror (docs/deploy.md, "Pinning and mirroring the CUDA base image"):
#   docker buildx imagetools inspect nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04     # "Digest: sha256:..."
#   docker build -f deploy/docker/gpu.Dockerfile -t dptrain:gpu \
#     --build-arg CUDA_IMAGE_DIGEST=sha256:... [--build-arg CUDA_IMAGE=REGISTRY/cuda:11.2.2-cudnn8-runtime-ubuntu20.04] .
# Without CUDA_IMAGE_DIGEST the FROM below is not a valid reference and the build stops there.
# Check which backend/device a worker really uses: the worker prints it at start ("backend ... device ...").
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ARG CUDA_IMAGE_DIGEST
ARG NODE_IMAGE=node:20-bookworm-slim

# Node 20 comes from the official image (its binaries need glibc >= 2.28; Ubuntu 20.04 has 2.31).
FROM ${NODE_IMAGE} AS node

FROM ${CUDA_IMAGE}@${CUDA_IMAGE_DIGEST} AS cuda-node
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && node --version && npm --version

# Build stage: compilers for native addons (tfjs-node-gpu downloads its prebuilt addon and libtensorflow-gpu
# during its install script and falls back to node-gyp when no prebuilt fits).
FROM cuda-node AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ curl \
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
# `npm ci` installs the optional @tensorflow/tfjs-node-gpu (and tfjs-node); --foreground-scripts shows their downloads.
# An optional dependency that fails to install is skipped silently by npm, so check that the GPU binding is there.
# Only what `dptrain worker` runs: the workspaces below and their dependencies. The CLI's sources come with
# `COPY packages` and find these through node_modules; @dptrain/cli and @dptrain/dashboard (ink, react, prom-client,
# the charts) are not installed, so `dptrain single`/`coordinator`/`dashboard` refuse to start here (E_CONFIG).
RUN npm ci --omit=dev --include=optional --foreground-scripts --no-audit --no-fund \
      -w @dptrain/core -w @dptrain/backend-native -w @dptrain/client -w @dptrain/worker -w @dptrain/coordinator \
 && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node \
 && npm cache clean --force
COPY packages ./packages

FROM cuda-node AS runtime
LABEL org.opencontainers.image.title="dptrain (GPU)" \
      org.opencontainers.image.description="dptrain worker on CUDA 11.2 + cuDNN 8.1 (tfjs-node-gpu 4.22), Node 20"
WORKDIR /opt/dptrain
COPY --from=build /opt/dptrain /opt/dptrain
# One process per GPU: each worker container gets one GPU (visible as device 0). TF takes GPU memory as needed.
# Hopper GPUs run TensorFlow 2.9's kernels through the driver's PTX JIT: a 4 GiB JIT cache (the maximum) keeps all
# of them after the first start; mount a volume at CUDA_CACHE_PATH to keep it across containers.
ENV NODE_ENV=production \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    CUDA_CACHE_MAXSIZE=4294967296 \
    CUDA_CACHE_PATH=/runs/.nv-compute-cache \
    TF_CPP_MIN_LOG_LEVEL=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN useradd --system --uid 10001 --create-home dptrain \
 && mkdir -p /data /runs && chown dptrain /runs
USER dptrain
VOLUME ["/data", "/runs"]
# 7420: coordinator WebSocket (workers, dashboard); 9464: coordinator HTTP (/metrics, /healthz, /readyz).
EXPOSE 7420 9464
ENTRYPOINT ["tini", "--", "node", "/opt/dptrain/packages/cli/bin/dptrain.js"]
CMD ["--help"]
