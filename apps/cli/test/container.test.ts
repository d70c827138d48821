// The edge image, built and run. podman builds the repository's Dockerfile on a local Debian bookworm + Node 22
// base (.ci/container-image.sh and .ci/container-base.sh: no registry image can be pulled here), then the image is
// checked for what it must not hold, `brats infer` segments a case in it as the non-root user with read-only
// inputs and no network, and `brats serve` in it answers a segmentation on loopback. The masks are read back with
// nibabel (when Debian's python3-nibabel is installed) and with our reader, and scored against the case's labels.
// Skips, saying why, where podman or runc is not installed (.ci/run installs them).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseNifti, readModelManifest, readNifti, type NiftiVolume } from '@brats/io';
import { referencePython, repositoryRoot, runPythonJson } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from './run-captured.js';
import { wholeTumourDice } from './whole-tumour-dice.js';

const run = promisify(execFile);
const IMAGE = process.env.BRATS_EDGE_IMAGE ?? 'localhost/brats-edge:ci';
const BASE_IMAGE = process.env.BRATS_BASE_IMAGE ?? 'localhost/brats-base:bookworm-node22';
const BUNDLE = path.join(repositoryRoot, 'models', 'brats2018-wt-unet');
const CONTAINER = `brats-edge-test-${process.pid}`;
// A cold build (base image, npm downloads, pnpm build) takes about 4 minutes on 2 cores; an unchanged tree, seconds.
const BUILD_TIMEOUT_MS = 20 * 60_000;
// The pretrained model scores WT Dice 0.92 on this phantom (brats infer on the host).
const PHANTOM_MINIMUM_DICE = 0.85;

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Why the container test cannot run here, or undefined when it can. */
function missingTools(): string | undefined {
  if (!onPath('podman')) return 'podman is not installed (apt-get install podman buildah runc debootstrap; .ci/run does)';
  if (!onPath('runc')) return 'runc is not installed (podman runs containers with it here: apt-get install runc)';
  const baseExists = spawnSync('podman', ['image', 'exists', BASE_IMAGE], { stdio: 'ignore' }).status === 0;
  if (!baseExists && !onPath('debootstrap')) return `debootstrap is not installed and there is no ${BASE_IMAGE} to build on`;
  if (!baseExists && process.getuid?.() !== 0) return `building ${BASE_IMAGE} with debootstrap needs root`;
  return undefined;
}

const skipReason = missingTools();

/** A case the model has an answer for: the held-out real case when ../shared/data has it, else a phantom. */
interface TestCase {
  id: string;
  kind: string;
  flair: string;
  t1w: string;
  t1gd: string;
  t2w: string;
  labels: string;
  minimumDice: number;
}

let dir: string;
let environment: NodeJS.ProcessEnv;
let testCase: TestCase;

/** A failed child process in a few lines: exit code or signal, then the end of its stderr and stdout. */
function describeFailure(error: unknown, tail: number): string {
  const failure = error as { code?: number | string; signal?: string; killed?: boolean; stdout?: string; stderr?: string };
  const how = failure.killed === true ? `was stopped after its time limit (${failure.signal ?? 'killed'})` : `failed (exit code ${String(failure.code ?? failure.signal)})`;
  return `${how}\n--- stderr (end) ---\n${(failure.stderr ?? '').slice(-tail)}\n--- stdout (end) ---\n${(failure.stdout ?? '').slice(-tail / 2)}`;
}

async function podman(args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run('podman', args, { env: environment, timeout, maxBuffer: 64 * 1024 ** 2 });
  } catch (error) {
    throw new Error(`podman ${args.join(' ')} ${describeFailure(error, 4000)}`);
  }
}

/** Runs `sh -c SCRIPT` in the image as root (to see every folder), entrypoint replaced; returns its stdout lines. */
async function inImage(script: string): Promise<string[]> {
  const { stdout } = await podman(['run', '--rm', '--network', 'none', '--user', 'root', '--entrypoint', 'sh', IMAGE, '-c', script]);
  return stdout.split('\n').filter((line) => line.length > 0);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function caseFiles(folder: string, id: string, names: Record<'flair' | 't1w' | 't1gd' | 't2w' | 'labels', string>): Promise<Omit<TestCase, 'kind' | 'minimumDice'>> {
  const file = (suffix: string) => path.join(folder, id, `${id}_${suffix}.nii.gz`);
  for (const suffix of Object.values(names)) expect(existsSync(file(suffix)), file(suffix)).toBe(true);
  return { id, flair: file(names.flair), t1w: file(names.t1w), t1gd: file(names.t1gd), t2w: file(names.t2w), labels: file(names.labels) };
}

/**
 * The held-out real case of the pretrained bundle (its recorded test Dice is the answer) when the shared BraTS
 * sample is there; otherwise a phantom written by `brats synth` in the BraTS 2018 layout (1 mm, 240x240x155).
 */
async function chooseCase(scans: string): Promise<TestCase> {
  const names = { flair: 'flair', t1w: 't1', t1gd: 't1ce', t2w: 't2', labels: 'seg' };
  const shared = process.env.BRATS_SHARED_DATA ?? path.resolve(repositoryRoot, '../shared/data');
  const manifest = await readModelManifest(BUNDLE);
  const heldOut = manifest.training?.split.testing[0];
  const real = heldOut === undefined ? undefined : path.join(shared, 'brats2018-sample', heldOut);
  if (heldOut !== undefined && real !== undefined && existsSync(real)) {
    await fs.cp(real, path.join(scans, heldOut), { recursive: true });
    const recorded = JSON.parse(await fs.readFile(path.join(BUNDLE, 'test-evaluation.json'), 'utf8')) as { cases: { id: string; WT: { dice: number } }[] };
    const dice = recorded.cases.find((entry) => entry.id === heldOut)?.WT.dice;
    expect(dice, `test-evaluation.json has no Dice for ${heldOut}`).toBeTypeOf('number');
    return { ...(await caseFiles(scans, heldOut, names)), kind: `held-out real case ${heldOut}`, minimumDice: dice! - 0.03 };
  }
  const synth = await runCaptured(['synth', '--out', scans, '--layout', 'brats2018', '--cases', '1', '--seed', '3']);
  expect(synth.code, synth.stderr).toBe(0);
  return { ...(await caseFiles(scans, 'Phantom_001', names)), kind: 'phantom (brats synth --seed 3)', minimumDice: PHANTOM_MINIMUM_DICE };
}

/** Checks a whole-tumour mask against the case with our reader: the scan's grid and affine, labels 0/1, Dice. */
async function checkMask(mask: NiftiVolume): Promise<number> {
  const flair = await readNifti(testCase.flair);
  const labels = await readNifti(testCase.labels);
  expect(mask.shape).toEqual(flair.shape);
  expect([...mask.affine]).toEqual([...flair.affine]);
  expect(new Set(mask.data)).toEqual(new Set([0, 1]));
  const score = wholeTumourDice(mask.data, labels.data);
  expect(score, `WT Dice of the ${testCase.kind}`).toBeGreaterThanOrEqual(testCase.minimumDice);
  return score;
}

const NIBABEL_CHECK = `
import json, sys
import nibabel, numpy
mask, flair, labels = (nibabel.load(name) for name in sys.argv[1:4])
predicted = numpy.asarray(mask.dataobj)
reference = numpy.asarray(labels.dataobj) > 0
positive = predicted > 0
print(json.dumps({
  "shape": list(predicted.shape), "flairShape": list(flair.shape),
  "affineMatches": bool(numpy.allclose(mask.affine, flair.affine, atol=1e-5)),
  "values": sorted(int(value) for value in numpy.unique(predicted)),
  "dice": float(2 * (positive & reference).sum() / (positive.sum() + reference.sum())),
}))
`;

beforeAll(async () => {
  if (skipReason !== undefined) return;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-container-'));
  // podman's defaults do not fit CI machines: crun refuses their mix of cgroup v1 and v2, and the default
  // ulimits exceed the host's hard limits. A file of our own, never /etc/containers.
  const conf = path.join(dir, 'containers.conf');
  await fs.writeFile(
    conf,
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' +
      '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  environment = { ...process.env, CONTAINERS_CONF: conf, BRATS_EDGE_IMAGE: IMAGE, BRATS_BASE_IMAGE: BASE_IMAGE };
  const started = Date.now();
  try {
    await run(path.join(repositoryRoot, '.ci/container-image.sh'), [IMAGE], { env: environment, timeout: BUILD_TIMEOUT_MS, maxBuffer: 256 * 1024 ** 2 });
  } catch (error) {
    throw new Error(`building the edge image: .ci/container-image.sh ${describeFailure(error, 6000)}`);
  }
  const { stdout: size } = await podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE]);
  const ready = `edge image ${IMAGE}: ready in ${Math.round((Date.now() - started) / 1000)} s, ${(Number(size) / 1e6).toFixed(0)} MB`;

  const scans = path.join(dir, 'scans');
  await fs.mkdir(scans);
  testCase = await chooseCase(scans);
  console.log(`${ready}; case: ${testCase.kind}, WT Dice at least ${testCase.minimumDice.toFixed(3)}`);
}, BUILD_TIMEOUT_MS + 120_000);

afterAll(async () => {
  if (skipReason !== undefined) return;
  await run('podman', ['rm', '--force', '--ignore', CONTAINER], { env: environment }).catch(() => undefined);
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)(`the edge container${skipReason === undefined ? '' : ` (skipped: ${skipReason})`}`, () => {
  it('holds the CLI, the server and ONNX Runtime for the non-root user, and no TensorFlow.js, @brats/unet, dev tools or TypeScript sources', async () => {
    const { stdout: user } = await podman(['image', 'inspect', '--format', '{{.Config.User}}', IMAGE]);
    expect(user.trim()).toBe('node');
    const { stdout: ids } = await podman(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c', 'id -u; id -g']);
    expect(ids.split('\n').filter(Boolean)).toEqual(['1000', '1000']);

    const modules = '/app/apps/cli/node_modules';
    // What must be there, so that the searches below look at a real tree.
    expect(await inImage(`ls ${modules}/@brats`)).toEqual(expect.arrayContaining(['io', 'ncs2-runtime', 'server']));
    expect(await inImage(`ls ${modules}/.pnpm | grep -c '^onnxruntime-node@'`)).toEqual(['1']);
    expect(Number((await inImage('find /app -name "*.d.ts" | wc -l'))[0])).toBeGreaterThan(0);

    expect(await inImage('find / -xdev \\( -name "@tensorflow" -o -name "@tensorflow+*" -o -name "tfjs*" \\) -print')).toEqual([]);
    expect(await inImage(`find / -xdev \\( -path "*/@brats/unet" -o -name "@brats+unet*" \\) -print`)).toEqual([]);
    expect(await inImage('find / -xdev -type f \\( -name "*.ts" -o -name "*.tsx" -o -name "*.mts" -o -name "*.cts" \\) ! -name "*.d.ts" ! -name "*.d.mts" ! -name "*.d.cts" -print')).toEqual([]);
    expect(await inImage(`ls ${modules}/.pnpm | grep -E '^(typescript|tsup|vitest|eslint|turbo|esbuild|@niivue|playwright-core|dockerfile-)' || true`)).toEqual([]);
    // The deployed CLI is its published files, its licence and production dependencies (the pretrained models,
    // @brats/model-brats-regions and @brats/model-brats2018-wt, are among them).
    expect(await inImage('ls -A /app; ls -A /app/apps; ls -A /app/apps/cli')).toEqual(['apps', 'cli', 'LICENSE', 'README.md', 'dist', 'node_modules', 'package.json']);
    expect(await inImage('ls /app/apps/cli/node_modules/@brats/model-brats2018-wt/brats-model.json')).toEqual(['/app/apps/cli/node_modules/@brats/model-brats2018-wt/brats-model.json']);
    expect(await inImage('ls /app/apps/cli/node_modules/@brats/model-brats-regions/brats-model.json')).toEqual(['/app/apps/cli/node_modules/@brats/model-brats-regions/brats-model.json']);

    const { stdout: engines } = await podman(['run', '--rm', '--network', 'none', IMAGE, 'engines']);
    expect(engines).toMatch(/^onnxruntime\s+yes\s/m);
    // The WebAssembly engine survives the trimming of onnxruntime-web to its Node build.
    expect(engines).toMatch(/^onnxruntime-web\s+yes\s/m);
    expect(engines).toMatch(/^tfjs\s+no\s/m);
    // Training is not in the image: the command says what is missing in one line and exits 1 (no stack trace).
    const training = await podman(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c', 'brats train --data none.h5 --out model; echo "exit $?"']);
    expect(training.stdout.trim()).toBe('exit 1');
    expect(training.stderr.trim()).toBe('error: brats train needs @brats/unet (TensorFlow.js), which this install does not have: install it with npm install @brats/unet, or run this step where it is installed');
  });

  it('segments a case with brats infer as uid 1000, from read-only mounts, with no network and a read-only root', async () => {
    const out = path.join(dir, 'infer-out');
    await fs.mkdir(out);
    await fs.chmod(out, 0o777);
    const { stdout, stderr } = await podman(
      [
        'run', '--rm', '--network', 'none', '--read-only',
        '--volume', `${BUNDLE}:/work/model:ro`,
        '--volume', `${path.join(dir, 'scans')}:/work/scans:ro`,
        '--volume', `${out}:/work/out`,
        IMAGE, 'infer', '--model', '/work/model', '/work/scans', '--out', '/work/out', '--engine', 'onnxruntime',
      ],
      600_000,
    );
    expect(stdout, stderr).toContain('1 label map(s) written to /work/out');
    // ORT_DISABLE_TELEMETRY=1 in the image: ONNX Runtime does not try to send usage data.
    expect(stderr).not.toMatch(/telemetry/i);
    const written = path.join(out, `${testCase.id}.nii.gz`);
    expect(existsSync(written), `${written}: ${stdout}`).toBe(true);
    // The container's user wrote it (podman as root maps uid 1000 to the host's uid 1000).
    if (process.getuid?.() === 0) expect((await fs.stat(written)).uid).toBe(1000);

    const score = await checkMask(await readNifti(written));
    console.log(`brats infer in the image: WT Dice ${score.toFixed(4)} on the ${testCase.kind}`);
    const python = referencePython(['nibabel', 'numpy']);
    if (python !== undefined) {
      const independent = runPythonJson(python, NIBABEL_CHECK, [written, testCase.flair, testCase.labels]) as {
        shape: number[]; flairShape: number[]; affineMatches: boolean; values: number[]; dice: number;
      };
      expect(independent.shape).toEqual(independent.flairShape);
      expect(independent.affineMatches).toBe(true);
      expect(independent.values).toEqual([0, 1]);
      expect(independent.dice).toBeCloseTo(score, 6);
    } else {
      console.log('container test: python3-nibabel is not installed; the mask was read with @brats/io only');
    }
  }, 600_000);

  it('serves brats serve on 127.0.0.1: healthz, one segmentation to a finished job with a mask, then a clean stop', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    await podman([
      'run', '--detach', '--name', CONTAINER, '--network', 'host',
      '--volume', `${BUNDLE}:/work/model:ro`,
      IMAGE, 'serve', '--model', '/work/model', '--host', '127.0.0.1', '--port', String(port), '--data-dir', '/work/brats-data',
    ]);
    const logs = async () => (await podman(['logs', CONTAINER]).catch((error: Error) => ({ stdout: '', stderr: error.message }))).stdout;

    const deadline = Date.now() + 90_000;
    let healthy = false;
    while (!healthy && Date.now() < deadline) {
      healthy = await fetch(`${base}/healthz`).then((response) => response.ok, () => false);
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(healthy, `no answer from ${base}/healthz: ${await logs()}`).toBe(true);

    const model = (await (await fetch(`${base}/v1/model`)).json()) as { engine: { name: string } };
    expect(['onnxruntime', 'openvino']).toContain(model.engine.name);

    const form = new FormData();
    for (const role of ['flair', 't1w', 't1gd', 't2w'] as const) {
      form.append(role, new Blob([await fs.readFile(testCase[role])]), path.basename(testCase[role]));
    }
    const accepted = await fetch(`${base}/v1/segmentations`, { method: 'POST', body: form });
    expect(accepted.status, await logs()).toBe(202);
    const { id } = (await accepted.json()) as { id: string };

    let job: { status: string; engine?: string; error?: unknown } = { status: 'queued' };
    const jobDeadline = Date.now() + 300_000;
    while ((job.status === 'queued' || job.status === 'running') && Date.now() < jobDeadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      job = (await (await fetch(`${base}/v1/segmentations/${id}`)).json()) as typeof job;
    }
    expect(job.status, `${JSON.stringify(job)}\n${await logs()}`).toBe('succeeded');

    const response = await fetch(`${base}/v1/segmentations/${id}/mask`);
    expect(response.status).toBe(200);
    const mask = await parseNifti(new Uint8Array(await response.arrayBuffer()), 'mask');
    await checkMask(mask);
    // The viewer and what its in-browser mode loads (ONNX Runtime Web's browser build, the model) are in the image.
    for (const file of ['/', '/viewer/app.js', '/viewer/ort/ort.min.mjs', '/viewer/ort/ort-wasm-simd-threaded.jsep.wasm', '/model/brats-model.json', '/model/model.onnx']) {
      const served = await fetch(`${base}${file}`);
      expect(served.status, file).toBe(200);
      // Read to the end: an unread body keeps its connection busy, and the server's stop waits for it.
      expect((await served.arrayBuffer()).byteLength, file).toBeGreaterThan(0);
    }

    await podman(['stop', '--time', '30', CONTAINER], 60_000);
    const { stdout: state } = await podman(['inspect', '--format', '{{.State.ExitCode}}', CONTAINER]);
    const stopped = await logs();
    expect(stopped).toContain('stopping: waiting for running jobs');
    expect(state.trim(), stopped).toBe('0');
    await podman(['rm', CONTAINER]);
  }, 600_000);
});
