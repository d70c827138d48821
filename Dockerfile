# The @brats edge image: the `brats` CLI and HTTP server with the ONNX Runtime and OpenVINO engines, and nothing
# for training: no TensorFlow.js, no @brats/unet, no devDependencies, no TypeScript sources.
# Build, run and device pass-through (Intel GPU/NPU, Neural Compute Stick 2): docs/edge-container.md.
# CI builds it with podman on a local base image and runs `brats infer` and `brats serve` in it
# (apps/cli/test/container.test.ts; the base comes from .ci/container-base.sh, see the docs).

# openvino-node >= 2024.6 requires Node >= 21, so both stages use Node 22 (the project needs >= 20.19).
# Any Debian-based Node 22 image with a uid 1000 user `node` fits; CI passes --build-arg NODE_IMAGE=<local base>.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true TURBO_TELEMETRY_DISABLED=1 ONNXRUNTIME_NODE_INSTALL=skip
# pnpm checks TLS against the system's certificates, which slim images leave out; this stage is thrown away.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, mount its CA bundle into the build and name it with these (CI does:
# docs/edge-container.md). Build arguments reach this stage's commands only, never the image.
ARG NODE_EXTRA_CA_CERTS
ARG SSL_CERT_FILE
RUN npm install --global pnpm@12.4.2
WORKDIR /src
# The lockfile names every package: fetch them in a layer that only a change of the lockfile rebuilds.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch --ignore-scripts
COPY . .
# No install scripts: building needs no native engine, and tfjs-node's would download libtensorflow for nothing.
RUN pnpm install --frozen-lockfile --offline --ignore-scripts
# The CLI and the workspace packages it depends on, nothing else of the workspace.
RUN pnpm turbo run build --filter=@brats/cli... --output-logs=errors-only
# The CLI with its production dependencies only, workspace packages copied in (their `files`: dist, README).
# onnxruntime-node ships its CPU build in the package (its script only fetches CUDA extras, hence
# ONNXRUNTIME_NODE_INSTALL=skip too); the one download the edge needs, OpenVINO's runtime, comes below.
RUN pnpm deploy --prod --filter @brats/cli --offline --ignore-scripts /out/apps/cli
# Training stays out of the edge image: remove @brats/unet and TensorFlow.js, and then every package that only
# they needed (mark from the CLI's own dependencies through pnpm's links, sweep what is left unmarked). Then the
# links left pointing at nothing, the command shims (.bin: nothing in the image runs them), TypeScript sources
# that some packages publish, ONNX Runtime's builds for other systems (about 200 MB for Windows, macOS and
# other architectures), and onnxruntime-web's builds that nothing loads (Node loads ort.node.min.* and the plain
# SIMD wasm; the viewer's in-browser mode, served by `brats serve`, loads ort.min.mjs and its jsep wasm).
RUN node -e ' \
      const fs = require("node:fs"), path = require("node:path"); \
      const top = "/out/apps/cli/node_modules", store = path.join(top, ".pnpm"); \
      const unwanted = (name) => name === "@brats/unet" || name.startsWith("@tensorflow/"); \
      const names = (dir) => fs.readdirSync(dir).filter((name) => !name.startsWith(".")).flatMap((name) => \
        name.startsWith("@") ? fs.readdirSync(path.join(dir, name)).map((inner) => `${name}/${inner}`) : [name]); \
      const marked = new Set(); \
      const mark = (dir) => { \
        if (!fs.existsSync(dir)) return; \
        for (const name of names(dir)) { \
          const link = path.join(dir, name); \
          if (unwanted(name)) { fs.rmSync(link, { recursive: true, force: true }); continue; } \
          let real; \
          try { real = fs.realpathSync(link); } catch { continue; } \
          const entry = path.relative(store, real).split(path.sep)[0]; \
          if (entry.startsWith("..") || entry === "node_modules" || marked.has(entry)) continue; \
          marked.add(entry); \
          mark(path.join(store, entry, "node_modules")); \
        } \
      }; \
      mark(top); \
      const swept = fs.readdirSync(store).filter((entry) => entry !== "node_modules" && !marked.has(entry) \
        && fs.statSync(path.join(store, entry)).isDirectory()); \
      for (const entry of swept) fs.rmSync(path.join(store, entry), { recursive: true, force: true }); \
      console.log(`edge tree: ${marked.size} packages kept, ${swept.length} removed`); \
    ' \
    && find /out -xtype l -delete \
    && find /out -depth -type d -name "@tensorflow" -exec rm -rf {} + \
    && find /out -type d -name .bin -prune -exec rm -rf {} + \
    && find /out -type f \( -name "*.ts" -o -name "*.tsx" -o -name "*.mts" -o -name "*.cts" \) \
         ! -name "*.d.ts" ! -name "*.d.mts" ! -name "*.d.cts" -delete \
    && for binaries in /out/apps/cli/node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v*; do \
         find "$binaries" -mindepth 2 -maxdepth 2 ! -path "*/linux/$(node -p process.arch)" -exec rm -rf {} +; \
       done \
    && for web in /out/apps/cli/node_modules/.pnpm/onnxruntime-web@*/node_modules/onnxruntime-web/dist; do \
         find "$web" -type f ! -name "ort.node.min.js" ! -name "ort.node.min.mjs" \
           ! -name "ort-wasm-simd-threaded.mjs" ! -name "ort-wasm-simd-threaded.wasm" \
           ! -name "ort.min.mjs" ! -name "ort-wasm-simd-threaded.jsep.mjs" ! -name "ort-wasm-simd-threaded.jsep.wasm" -delete; \
       done \
    && rm -f /out/apps/cli/pnpm-lock.yaml /out/apps/cli/pnpm-workspace.yaml
# openvino-node fetches the OpenVINO runtime with its install script. It is optional: a failed download leaves
# it unloadable, and `brats` says so and runs ONNX Runtime instead.
RUN for package in /out/apps/cli/node_modules/.pnpm/openvino-node@*/node_modules/openvino-node; do \
      if [ -d "$package" ]; then \
        (cd "$package" && node scripts/download-runtime.js --ignore-if-exists) \
          || echo "openvino-node: the OpenVINO runtime did not download; the image runs ONNX Runtime only"; \
      fi; \
    done
# The pretrained bundles (@brats/model-brats-regions, what `brats` uses when no --model is given, and
# @brats/model-brats2018-wt) are among the CLI's dependencies: the deploy above put them in its node_modules. The licence goes beside the CLI, as in its npm package.
RUN cp /src/LICENSE /out/apps/cli/LICENSE

FROM ${NODE_IMAGE} AS runtime
# true: add Debian's Intel OpenCL runtime, which OpenVINO's GPU plugin needs to see an Intel GPU.
ARG INTEL_GPU_RUNTIME=false
RUN if [ "$INTEL_GPU_RUNTIME" = "true" ]; then \
      apt-get update \
      && apt-get install --yes --no-install-recommends intel-opencl-icd ocl-icd-libopencl1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# The Node images have this user; a plain Debian base with Node gets the same one.
RUN id node >/dev/null 2>&1 \
    || (groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node)
# ONNX Runtime's Linux build (1.30) sends usage telemetry to Microsoft unless told not to: an edge box that reads
# patient scans opens no such connection.
ENV NODE_ENV=production ORT_DISABLE_TELEMETRY=1
WORKDIR /app
# Owned by root and read-only for the user that runs: the code cannot be changed by what it processes.
COPY --from=build /out /app
RUN chmod 755 /app/apps/cli/dist/bin.js \
    && ln -s /app/apps/cli/dist/bin.js /usr/local/bin/brats \
    && mkdir /work && chown node:node /work
# The non-root user of the Node images (uid 1000); mount data, models and outputs under /work.
USER node
WORKDIR /work
EXPOSE 8080
ENTRYPOINT ["brats"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
