// Read throughput of the NIfTI reader: MB/s (voxel bytes as stored, after decompression) and seconds per BraTS case, on the real
// samples in ../shared/data when present and on phantom cases generated here.
// Run: pnpm --filter @brats/io bench:read   (after pnpm build)
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as io from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const sharedData = process.env.BRATS_SHARED_DATA ?? path.resolve(here, '../../../../shared/data');

async function measure(label, dataset, maxCases) {
  const cases = dataset.cases.slice(0, maxCases);
  let bytes = 0;
  const started = performance.now();
  for (const ref of cases) {
    const loaded = await io.loadCase(ref);
    for (const channel of loaded.channels) bytes += channel.data.byteLength;
    if (loaded.labels) bytes += loaded.labels.data.byteLength;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${label.padEnd(34)} ${String(cases.length).padStart(3)} cases  ${(bytes / 1e6 / seconds).toFixed(1).padStart(7)} MB/s  ${(seconds / cases.length).toFixed(3)} s/case`,
  );
}

console.log("NIfTI read throughput (decompress + decode + canonical channels (integers kept as stored) + labels), one case at a time (a case's files inflate side by side on libuv's thread pool)");
if (existsSync(path.join(sharedData, 'brats2018-sample'))) {
  await measure('real BraTS 2018 (4 files + seg)', await io.openDataset(path.join(sharedData, 'brats2018-sample')), 6);
  await measure('real Decathlon (one 4D file + seg)', await io.openDataset(path.join(sharedData, 'msd-task01-sample')), 2);
} else {
  console.log(`real samples: skipped (${sharedData} not found)`);
}
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-read-bench-'));
try {
  for (const layout of ['brats2018', 'msd']) {
    const out = path.join(dir, layout);
    await io.writePhantomDataset(out, { layout, cases: 3, seed: 1 });
    await measure(`phantom ${layout} 240x240x155`, await io.openDataset(out), 3);
  }
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
