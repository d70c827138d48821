#!/usr/bin/env node
// Size of the edge image (the repository's Dockerfile, built with podman by .ci/container-image.sh or by the
// container test): the whole image, its base, and what @brats adds on top. With --build it builds the image first
// and prints how long that took (seconds when podman's layer cache has an unchanged tree, minutes cold).
// Without podman or without the image it says so and exits 0, so `pnpm bench` runs everywhere.
// Run: node apps/cli/bench/container-bench.mjs [--build]   (BRATS_EDGE_IMAGE, BRATS_BASE_IMAGE name the images)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const image = process.env.BRATS_EDGE_IMAGE ?? 'localhost/brats-edge:ci';
const base = process.env.BRATS_BASE_IMAGE ?? 'localhost/brats-base:bookworm-node22';

function podman(args) {
  return spawnSync('podman', args, { encoding: 'utf8' });
}

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(0)} MB`;
}

function imageSize(name) {
  const result = podman(['image', 'inspect', '--format', '{{.Size}}', name]);
  return result.status === 0 ? Number(result.stdout.trim()) : undefined;
}

if (podman(['--version']).error !== undefined) {
  console.log('container-bench: podman is not installed, so there is no edge image to measure (apt-get install podman buildah runc debootstrap)');
  process.exit(0);
}

if (process.argv.includes('--build')) {
  const started = process.hrtime.bigint();
  const build = spawnSync(path.join(root, '.ci/container-image.sh'), [image], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) {
    console.error(`container-bench: building ${image} failed (exit code ${build.status ?? build.signal})`);
    process.exit(1);
  }
  console.log(`edge image build: ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s (.ci/container-image.sh)`);
}

const size = imageSize(image);
if (size === undefined) {
  console.log(`container-bench: no image ${image}; build it with .ci/container-image.sh (or run the container test, or this with --build)`);
  process.exit(0);
}
const baseSize = imageSize(base);
console.log(`edge image ${image}: ${megabytes(size)}`);
if (baseSize !== undefined) {
  console.log(`  base ${base}: ${megabytes(baseSize)}; @brats CLI, server, engines and the pretrained bundle add ${megabytes(size - baseSize)}`);
}
