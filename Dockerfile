# The @brats edge image: the `brats` CLI and HTTP server with the ONNX Runtime and OpenVINO engines.
# Build, run and device pass-through (Intel GPU/NPU, Neural Compute Stick 2): docs/edge-container.md.
# CI does not build this image (no Docker engine there); tests only lint this file.

# openvino-node >= 2024.6 requires Node >= 21, so both stages use Node 22 (the project needs >= 20.19).
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true TURBO_TELEMETRY_DISABLED=1
RUN npm install --global pnpm@12.4.2
WORKDIR /src
COPY . .
# Optional native engines download their binaries while installing; a failed download is skipped
# (they are optionalDependencies) and the toolkit falls back at run time, saying so. openvino-node installs
# only on Node >= 21, so here but not on a Node 20 host: a build script that pnpm-workspace.yaml's allowBuilds
# does not list would fail the install (pnpm's strictDepBuilds), hence the setting; it runs below instead.
RUN pnpm install --frozen-lockfile --config.strict-dep-builds=false
RUN pnpm build
# Keep only what runs: reinstall without devDependencies (pnpm must purge node_modules to do that).
RUN pnpm install --frozen-lockfile --prod --config.strict-dep-builds=false --config.confirm-modules-purge=false
# openvino-node fetches its OpenVINO runtime in its postinstall script: run it (a no-op when allowBuilds
# already let pnpm run it and the runtime is there).
RUN for package in node_modules/.pnpm/openvino-node@*/node_modules/openvino-node; do \
      if [ -d "$package" ]; then (cd "$package" && node scripts/download-runtime.js --ignore-if-exists); fi; \
    done

FROM ${NODE_IMAGE} AS runtime
# true: add Debian's Intel OpenCL runtime, which OpenVINO's GPU plugin needs to see an Intel GPU.
ARG INTEL_GPU_RUNTIME=false
RUN if [ "$INTEL_GPU_RUNTIME" = "true" ]; then \
      apt-get update \
      && apt-get install --yes --no-install-recommends intel-opencl-icd ocl-icd-libopencl1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the user that runs: the code cannot be changed by what it processes.
COPY --from=build /src /app
RUN chmod 755 /app/apps/cli/dist/bin.js \
    && ln -s /app/apps/cli/dist/bin.js /usr/local/bin/brats \
    && mkdir /work && chown node:node /work
# The non-root user of the Node images (uid 1000); mount data, models and outputs under /work.
USER node
WORKDIR /work
EXPOSE 8080
ENTRYPOINT ["brats"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
