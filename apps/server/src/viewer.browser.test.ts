// The pixel counting runs inside the page (page.evaluate), so this file also sees the DOM types.
/// <reference lib="dom" />
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REGION_COLORS, parseNifti } from '@brats/io';
import { exportBundleToOnnx } from '@brats/unet';
import { CHROMIUM, hasChromium, launchChromium, type BrowserContext } from '@brats/vitest-config/browser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NESTED_BOX_VOXELS, PHANTOM_SIZE, writeNestedBoxCase, writePhantomFiles, writeRegionsPointwiseBundle, writeTinyBundle, type PhantomFiles } from '../test/fixtures.js';
import { startServer, type BratsServer } from './server.js';
import { buildViewer } from './viewer-build.js';

/**
 * The all-tumour bundle calls every voxel of its 32 x 32 x 16 window tumour, so the tumour reaches every face of it and
 * windows beyond them segment the rest of the 48 x 48 x 32 phantom: every voxel, of 1 mm³.
 */
const ALL_VOXELS = PHANTOM_SIZE[0] * PHANTOM_SIZE[1] * PHANTOM_SIZE[2];

const chromiumThere = hasChromium();

interface PixelCounts {
  overlay: number;
  scan: number;
}

describe.skipIf(!chromiumThere)(`viewer in headless Chromium${chromiumThere ? '' : ` (skipped: ${CHROMIUM} is missing; apt-get install chromium)`}`, () => {
  let dir: string;
  let files: PhantomFiles;
  let server: BratsServer & { url: string };
  let regionsServer: BratsServer & { url: string };
  let boxes: PhantomFiles['roles'];
  // Loaded lazily so that a machine without Chromium never loads playwright-core.
  let browser: BrowserContext;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-viewer-'));
    files = await writePhantomFiles(path.join(dir, 'phantoms'));
    await writeTinyBundle(path.join(dir, 'wt'), 1, [32, 32, 16], true);
    // With model.onnx the page can also segment in the browser, on the same model.
    await exportBundleToOnnx(path.join(dir, 'wt'));
    await buildViewer(path.join(dir, 'viewer'));
    server = await startServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data'), engine: 'tfjs', port: 0, viewerDir: path.join(dir, 'viewer') }, {});
    // A regions model with a known answer (three nested boxes) on the native ONNX Runtime engine.
    await writeRegionsPointwiseBundle(path.join(dir, 'regions'));
    boxes = await writeNestedBoxCase(path.join(dir, 'boxes'));
    regionsServer = await startServer({ model: path.join(dir, 'regions'), dataDir: path.join(dir, 'data-regions'), engine: 'onnxruntime', port: 0, viewerDir: path.join(dir, 'viewer') }, {});
    browser = await launchChromium(path.join(dir, 'profile'));
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await regionsServer?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /**
   * Compares two screenshots of the canvas (PNG, decoded by the browser itself): pixels that are mask-coloured
   * (green over grey) with the mask shown, pixels of the scan (grey, not black) without it, and pixels that are
   * scan without the mask and mask-coloured with it: the overlay lying over the scan.
   */
  async function comparePixels(withMask: Buffer, withoutMask: Buffer): Promise<PixelCounts & { overlayOnScan: number; overlayWithoutMask: number }> {
    const page = await browser.newPage();
    try {
      return await page.evaluate(async ([shown, hidden]) => {
        const decode = async (base64: string): Promise<Uint8ClampedArray> => {
          const image = new Image();
          image.src = `data:image/png;base64,${base64}`;
          await image.decode();
          const canvas = document.createElement('canvas');
          canvas.width = image.width;
          canvas.height = image.height;
          const context = canvas.getContext('2d')!;
          context.drawImage(image, 0, 0);
          return context.getImageData(0, 0, image.width, image.height).data;
        };
        const [a, b] = [await decode(shown!), await decode(hidden!)];
        const isOverlay = (d: Uint8ClampedArray, p: number): boolean => d[p + 1]! > d[p]! + 40 && d[p + 1]! > d[p + 2]! + 30;
        const isScan = (d: Uint8ClampedArray, p: number): boolean => Math.abs(d[p]! - d[p + 1]!) < 8 && Math.abs(d[p + 1]! - d[p + 2]!) < 8 && d[p]! > 30;
        const counts = { overlay: 0, scan: 0, overlayOnScan: 0, overlayWithoutMask: 0 };
        for (let p = 0; p < Math.min(a.length, b.length); p += 4) {
          if (isOverlay(a, p)) counts.overlay++;
          if (isOverlay(b, p)) counts.overlayWithoutMask++;
          if (isScan(b, p)) counts.scan++;
          if (isScan(b, p) && isOverlay(a, p)) counts.overlayOnScan++;
        }
        return counts;
      }, [withMask.toString('base64'), withoutMask.toString('base64')]);
    } finally {
      await page.close();
    }
  }

  it('uploads a phantom, waits for the job and draws the mask over the scan', async () => {
    const page = await browser.newPage();
    const external: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(server.url) && !request.url().startsWith('data:') && !request.url().startsWith('blob:')) external.push(request.url());
    });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(server.url);
    // Before any result, the result panel (canvas, download link) is not shown.
    expect(await page.locator('#result-panel').isVisible()).toBe(false);
    await page.locator('#file-input').setInputFiles(files.scan4d);
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-state="shown"], body[data-state="failed"]', { timeout: 90_000 });
    expect(await page.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(problems).toEqual([]);
    // niivue draws on the next animation frame.
    await page.waitForTimeout(500);
    const canvas = page.locator('#viewer-canvas');
    const shown = await canvas.screenshot();
    // Set BRATS_VIEWER_SCREENSHOT=file.png to keep a picture of the page with the mask shown.
    if (process.env.BRATS_VIEWER_SCREENSHOT) await page.screenshot({ path: process.env.BRATS_VIEWER_SCREENSHOT });
    await page.locator('#opacity-slider').fill('0');
    await page.waitForTimeout(300);
    const pixels = await comparePixels(shown, await canvas.screenshot());
    expect(pixels.scan).toBeGreaterThan(2000);
    expect(pixels.overlay).toBeGreaterThan(2000);
    expect(pixels.overlayWithoutMask).toBe(0);
    // The whole scan is tumour, so most scan pixels turn green.
    expect(pixels.overlayOnScan).toBeGreaterThan(0.5 * pixels.scan);

    const rows = await page.locator('#volume-table tbody tr').allTextContents();
    expect(rows).toHaveLength(1);
    const job = (await (await fetch(`${server.url}/v1/segmentations/${(await page.locator('#mask-link').getAttribute('href'))!.split('/')[3]}`)).json()) as {
      volumesMl: { WT: number };
      notices: string[];
      warnings: string[];
    };
    expect(rows[0]).toContain(job.volumesMl.WT.toFixed(2));
    expect(job.volumesMl.WT).toBeCloseTo(ALL_VOXELS / 1000, 6);
    // The tumour fills the model's 32 x 32 x 16 window and the scan goes on: the windows beyond are a notice, shown
    // beside the result.
    expect(job.notices).toEqual([expect.stringMatching(/^predicted tumour reached the .* window, with scan beyond/)]);
    expect(await page.locator('#notes').isVisible()).toBe(true);
    expect(await page.locator('#notes li').allTextContents()).toEqual([...job.warnings, ...job.notices]);

    await page.locator('#sequence-select').selectOption('t2w');
    await page.waitForSelector('body[data-state="shown"]');
    expect(await page.locator('#status').textContent()).toContain('Showing T2w');
    expect(external).toEqual([]);
    // The address now names the job; opened afresh, it shows the same result.
    const jobId = (await page.locator('#mask-link').getAttribute('href'))!.split('/')[3]!;
    expect(new URL(page.url()).searchParams.get('job')).toBe(jobId);
    const again = await browser.newPage();
    await again.goto(`${server.url}/?job=${jobId}`);
    await again.waitForSelector('body[data-state="shown"], body[data-state="failed"]', { timeout: 60_000 });
    expect(await again.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(await again.locator('#result-panel').isVisible()).toBe(true);
    expect(await again.locator('#mask-link').getAttribute('href')).toBe(`/v1/segmentations/${jobId}/mask`);
    await again.close();
    await page.close();
  });

  it('segments in this browser on the server page: the same mask, threads under cross-origin isolation, nothing uploaded', async () => {
    const page = await browser.newPage();
    const requests: { url: string; method: string; body: number }[] = [];
    page.on('request', (request) => requests.push({ url: request.url(), method: request.method(), body: request.postDataBuffer()?.length ?? 0 }));
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(server.url);
    await page.locator('#mode-browser').check();
    // The four files of a BraTS 2018 case, in another order: roles come from the names.
    await page.locator('#file-input').setInputFiles([files.roles.t2w, files.roles.flair, files.roles.t1gd, files.roles.t1w]);
    expect(await page.locator('#role-table select').evaluateAll((selects) => selects.map((select) => (select as HTMLSelectElement).value))).toEqual(['t2w', 'flair', 't1gd', 't1w']);
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-segment-seconds], body[data-state="failed"]', { timeout: 120_000 });
    expect(await page.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(problems).toEqual([]);
    // The server sends COOP and COEP: the page is cross-origin isolated, so WebAssembly runs threads.
    const isolation = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    expect(isolation.isolated).toBe(true);
    expect(await page.locator('body').getAttribute('data-backend')).toBe('wasm');
    expect(await page.locator('body').getAttribute('data-threads')).toBe(String(Math.min(4, isolation.cores)));
    expect(await page.locator('#engine-info').textContent()).toMatch(/^In this browser: ONNX Runtime Web \d+\.\d+\.\d+, WebAssembly SIMD, \d threads? \(WebAssembly: /);
    expect(await page.locator('#timing').textContent()).toMatch(/^Segmented in this browser, nothing uploaded: .* s from Segment to overlay/);
    // The model is all tumour, its window and the windows beyond it, as on the server.
    expect(await page.locator('#volume-table tbody tr').allTextContents()).toEqual([`Whole tumour (WT)${(ALL_VOXELS / 1000).toFixed(2)}`]);

    await page.waitForTimeout(500);
    const canvas = page.locator('#viewer-canvas');
    const shown = await canvas.screenshot();
    await page.locator('#opacity-slider').fill('0');
    await page.waitForTimeout(300);
    const pixels = await comparePixels(shown, await canvas.screenshot());
    expect(pixels.overlay).toBeGreaterThan(2000);
    expect(pixels.overlayWithoutMask).toBe(0);

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#mask-link').click()]);
    expect(download.suggestedFilename()).toBe('Phantom_001.nii.gz');
    const mask = await parseNifti(await fs.readFile((await download.path())!), 'downloaded mask');
    const flair = await parseNifti(await fs.readFile(files.roles.flair), files.roles.flair);
    expect(mask.shape).toEqual(flair.shape);
    expect(mask.affine).toEqual(flair.affine);
    expect([...new Set(mask.data)]).toEqual([1]);
    expect(mask.data).toHaveLength(ALL_VOXELS);

    // Only GETs of the page, its scripts, ONNX Runtime and the model, from this server; no request has a body.
    const origin = new URL(server.url).origin;
    expect(requests.filter((request) => !request.url.startsWith('blob:') && !request.url.startsWith('data:') && new URL(request.url).origin !== origin)).toEqual([]);
    expect(requests.filter((request) => request.method !== 'GET' || request.body > 0)).toEqual([]);
    expect(requests.some((request) => request.url.endsWith('/model/model.onnx'))).toBe(true);
    expect(requests.some((request) => request.url.includes('/v1/segmentations'))).toBe(false);
    await page.close();
  });

  it('segments one 4D file in this browser, and names the file and the fault of a file it cannot read', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(server.url);
    await page.locator('#mode-browser').check();
    await page.locator('#file-input').setInputFiles(files.scan4d);
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-segment-seconds], body[data-state="failed"]', { timeout: 120_000 });
    expect(await page.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(await page.locator('#volume-table tbody tr').allTextContents()).toEqual([`Whole tumour (WT)${(ALL_VOXELS / 1000).toFixed(2)}`]);
    expect(await page.locator('#mask-link').getAttribute('download')).toBe('PHANTOM_001.nii.gz');
    // Segmented here, the page shows the same notice as the server's job: the windows beyond the model's.
    expect(await page.locator('#notes li').allTextContents()).toEqual([expect.stringMatching(/^predicted tumour reached the .* window, with scan beyond/)]);

    // Not NIfTI at all: the page says which file and why, in one line, and stays usable.
    const bogus = path.join(dir, 'not-a-scan.nii.gz');
    await fs.writeFile(bogus, 'this is not a NIfTI file, nor gzip');
    await page.locator('#file-input').setInputFiles(bogus);
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-state="failed"]', { timeout: 60_000 });
    const status = (await page.locator('#status').textContent())!;
    expect(status).toMatch(/^not-a-scan\.nii\.gz: /);
    expect(status.split('\n')).toHaveLength(1);
    expect(await page.locator('#upload-button').isEnabled()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a regions job in three colours with its three volumes, segmented on the server and in the browser', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(regionsServer.url);
    await page.locator('#file-input').setInputFiles([boxes.flair, boxes.t1w, boxes.t1gd, boxes.t2w]);
    const expectedRows = [
      `Whole tumour (WT)${(NESTED_BOX_VOXELS.WT / 1000).toFixed(2)}`,
      `Tumour core (TC)${(NESTED_BOX_VOXELS.TC / 1000).toFixed(2)}`,
      `Enhancing tumour (ET)${(NESTED_BOX_VOXELS.ET / 1000).toFixed(2)}`,
    ];
    /** Pixels of the canvas (mask fully opaque) within 40 of each region's colour. */
    const colourCounts = async (): Promise<Record<string, number>> => {
      await page.locator('#opacity-slider').fill('1');
      await page.waitForTimeout(500);
      const shot = (await page.locator('#viewer-canvas').screenshot()).toString('base64');
      return page.evaluate(
        async ([png, colours]) => {
          const image = new Image();
          image.src = `data:image/png;base64,${png}`;
          await image.decode();
          const canvas = document.createElement('canvas');
          [canvas.width, canvas.height] = [image.width, image.height];
          const context = canvas.getContext('2d')!;
          context.drawImage(image, 0, 0);
          const data = context.getImageData(0, 0, image.width, image.height).data;
          const counts: Record<string, number> = {};
          for (const [region, [r, g, b]] of Object.entries(colours)) {
            counts[region] = 0;
            for (let p = 0; p < data.length; p += 4) if (Math.abs(data[p]! - r) < 40 && Math.abs(data[p + 1]! - g) < 40 && Math.abs(data[p + 2]! - b) < 40) counts[region]++;
          }
          return counts;
        },
        [shot, REGION_COLORS] as const,
      );
    };

    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-state="shown"], body[data-state="failed"]', { timeout: 90_000 });
    expect(await page.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(await page.locator('#volume-table tbody tr').allTextContents()).toEqual(expectedRows);
    // The boxes lie inside the model's window at its spacing: nothing to note beside the result.
    expect(await page.locator('#notes').isVisible()).toBe(false);
    const onServer = await colourCounts();
    // The page opens on the slice through the tumour's centre (k 16), where all three boxes show: oedema ring
    // 24² - 16² voxels, core ring 16² - 8², enhancing 8², each voxel many pixels wide.
    for (const region of ['WT', 'TC', 'ET']) expect(onServer[region], `${region} pixels: ${JSON.stringify(onServer)}`).toBeGreaterThan(500);
    // The areas keep their order: oedema ring (320 voxels) > core ring (192) > enhancing (64).
    expect(onServer.WT!).toBeGreaterThan(onServer.TC!);
    expect(onServer.TC!).toBeGreaterThan(onServer.ET!);

    await page.locator('#mode-browser').check();
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-segment-seconds], body[data-state="failed"]', { timeout: 90_000 });
    expect(await page.locator('#status').textContent()).toContain('Showing FLAIR');
    expect(await page.locator('#volume-table tbody tr').allTextContents()).toEqual(expectedRows);
    const inBrowser = await colourCounts();
    for (const region of ['WT', 'TC', 'ET']) expect(inBrowser[region], `${region} pixels: ${JSON.stringify(inBrowser)}`).toBeGreaterThan(500);
    // BraTS 2017-2021 names: the downloaded mask holds 0, 1 (core), 2 (oedema) and 4 (enhancing), nested.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#mask-link').click()]);
    const mask = await parseNifti(await fs.readFile((await download.path())!), 'downloaded mask');
    const counts = new Map<number, number>();
    for (const value of mask.data) counts.set(Number(value), (counts.get(Number(value)) ?? 0) + 1);
    expect([...counts.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 4]);
    expect(counts.get(4)).toBe(NESTED_BOX_VOXELS.ET);
    expect(counts.get(1)).toBe(NESTED_BOX_VOXELS.TC - NESTED_BOX_VOXELS.ET);
    expect(counts.get(2)).toBe(NESTED_BOX_VOXELS.WT - NESTED_BOX_VOXELS.TC);
    expect(problems).toEqual([]);
    await page.close();
  });
});
