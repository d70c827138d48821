// The static site of `brats viewer --out`, served from a loopback static host and driven in headless Chromium:
// the four files of a real case (a phantom without ../shared/data) are segmented in the page, and the downloaded
// mask is compared with the CLI's ONNX Runtime mask of the same case with the same (the bundle's) options.
/// <reference lib="dom" />
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest, readNifti } from '@brats/io';
import { CHROMIUM, hasChromium, launchChromium, serveStatic, type BrowserContext, type StaticHost } from '@brats/vitest-config/browser';
import { repositoryRoot, sharedDataDir } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from './run-captured.js';

const BUNDLE = path.join(repositoryRoot, 'models', 'brats2018-wt-unet');
const chromiumThere = hasChromium();

interface CaseFiles {
  id: string;
  kind: string;
  files: Record<'flair' | 't1w' | 't1gd' | 't2w', string>;
}

/** The bundle's held-out real case when ../shared/data has it, else a BraTS 2018 phantom written by `brats synth`. */
async function chooseCase(scratch: string): Promise<CaseFiles> {
  const suffixes = { flair: 'flair', t1w: 't1', t1gd: 't1ce', t2w: 't2' } as const;
  const filesOf = (folder: string, id: string): CaseFiles['files'] =>
    Object.fromEntries(Object.entries(suffixes).map(([role, suffix]) => [role, path.join(folder, id, `${id}_${suffix}.nii.gz`)])) as CaseFiles['files'];
  const shared = sharedDataDir();
  // The first of its test cases in the BraTS 2018 sample.
  const heldOut = (await readModelManifest(BUNDLE)).training?.split.testing.find((id) => shared !== undefined && existsSync(path.join(shared, 'brats2018-sample', id)));
  if (heldOut !== undefined && shared !== undefined) {
    return { id: heldOut, kind: `held-out real case ${heldOut}`, files: filesOf(path.join(shared, 'brats2018-sample'), heldOut) };
  }
  const synth = await runCaptured(['synth', '--out', path.join(scratch, 'phantoms'), '--layout', 'brats2018', '--cases', '1', '--seed', '3']);
  expect(synth.code, synth.stderr).toBe(0);
  return { id: 'Phantom_001', kind: 'phantom (brats synth --seed 3; ../shared/data is not here)', files: filesOf(path.join(scratch, 'phantoms'), 'Phantom_001') };
}

describe.skipIf(!chromiumThere)(`static viewer site in headless Chromium${chromiumThere ? '' : ` (skipped: ${CHROMIUM} is missing; apt-get install chromium)`}`, () => {
  let dir: string;
  let site: string;
  let host: StaticHost;
  let browser: BrowserContext;
  let testCase: CaseFiles;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-static-viewer-'));
    site = path.join(dir, 'site');
    const written = await runCaptured(['viewer', '--out', site, '--model', BUNDLE]);
    expect(written.code, written.stderr).toBe(0);
    testCase = await chooseCase(dir);
    host = await serveStatic(site);
    browser = await launchChromium(path.join(dir, 'profile'));
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await host?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("segments the four files in the page, with no request carrying scan bytes, and matches the CLI's ONNX Runtime mask", async () => {
    const cli = await runCaptured([
      'infer',
      ...Object.entries(testCase.files).map(([role, file]) => `${role}=${file}`),
      '--model',
      BUNDLE,
      '--engine',
      'onnxruntime',
      '--out',
      path.join(dir, 'cli'),
    ]);
    expect(cli.code, cli.stderr).toBe(0);

    const page = await browser.newPage();
    const seen: { url: string; method: string; body: Buffer | null }[] = [];
    page.on('request', (request) => seen.push({ url: request.url(), method: request.method(), body: request.postDataBuffer() }));
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${host.url}/`);
    // A static site has no server: no mode choice and no API token.
    expect(await page.locator('#mode-box').isVisible()).toBe(false);
    // The model's description arrives after the page loads (a fetch of the manifest): wait for it, not for a timer.
    await page.waitForFunction(() => !(document.getElementById('model-info')?.textContent ?? '').startsWith('Loading'), undefined, { timeout: 60_000 });
    expect(await page.locator('#model-info').textContent()).toMatch(/regions WT; it runs in this browser/);
    await page.locator('#file-input').setInputFiles(Object.values(testCase.files));
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-segment-seconds], body[data-state="failed"]', { timeout: 240_000 });
    expect(await page.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(problems).toEqual([]);
    // The host sends the site's _headers: cross-origin isolated, so WebAssembly runs threads.
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    const engineLine = (await page.locator('#engine-info').textContent())!;
    expect(engineLine).toMatch(/WebAssembly SIMD, \d threads?/);
    const seconds = Number(await page.locator('body').getAttribute('data-segment-seconds'));

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#mask-link').click()]);
    expect(download.suggestedFilename()).toBe(`${testCase.id}.nii.gz`);
    const saved = path.join(dir, 'browser-mask.nii.gz');
    await download.saveAs(saved);
    const browserMask = await readNifti(saved);
    const cliMask = await readNifti(path.join(dir, 'cli', `${testCase.id}.nii.gz`));
    expect(browserMask.shape).toEqual(cliMask.shape);
    expect(browserMask.affine).toEqual(cliMask.affine);
    let same = 0;
    let tumour = 0;
    for (let v = 0; v < cliMask.data.length; v++) {
      if (browserMask.data[v] === cliMask.data[v]) same++;
      if (cliMask.data[v] !== 0) tumour++;
    }
    const identical = same / cliMask.data.length;
    // The reported figure: how much of the scan the two runtimes label alike.
    console.log(`in-browser vs CLI (onnxruntime) on the ${testCase.kind}: ${(100 * identical).toFixed(4)}% of ${cliMask.data.length} voxels identical ` + `(${cliMask.data.length - same} differ; CLI tumour voxels ${tumour}); Segment to overlay ${seconds.toFixed(1)} s; ${engineLine}`);
    expect(identical).toBeGreaterThanOrEqual(0.999);
    expect(tumour).toBeGreaterThan(1000);
    // The volume the page shows is that of the mask it saved.
    let browserTumour = 0;
    for (const value of browserMask.data) if (value !== 0) browserTumour++;
    const [si, sj, sk] = browserMask.spacing;
    expect((await page.locator('#volume-table tbody tr').allTextContents())[0]).toBe(`Whole tumour (WT)${((browserTumour * si! * sj! * sk!) / 1000).toFixed(2)}`);

    // Requests: the page's own files from the site's origin only; none has a body, so none carries scan bytes.
    const origin = new URL(host.url).origin;
    const elsewhere = seen.filter((request) => !/^(blob|data):/.test(request.url) && new URL(request.url).origin !== origin);
    expect(elsewhere).toEqual([]);
    expect(seen.filter((request) => request.method !== 'GET' || (request.body?.length ?? 0) > 0)).toEqual([]);
    // What the host itself received says the same, workers' requests included.
    expect(host.requests.filter((request) => request.method !== 'GET' || request.bodyBytes > 0)).toEqual([]);
    const scanHead = (await fs.readFile(testCase.files.flair)).subarray(0, 64);
    expect(host.requests.some((request) => request.url.includes(testCase.id) || request.body.includes(scanHead))).toBe(false);
    expect(host.requests.map((request) => request.url)).toEqual(expect.arrayContaining(['/', '/viewer/app.js', '/viewer/ort/ort.min.mjs', '/viewer/ort/ort-wasm-simd-threaded.jsep.wasm', '/model/brats-model.json', '/model/model.onnx']));
    if (process.env.BRATS_VIEWER_SCREENSHOT) await page.screenshot({ path: process.env.BRATS_VIEWER_SCREENSHOT });
    await page.close();
  });
});
