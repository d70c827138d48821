import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError } from '../errors.js';
import type { Affine } from '../volume.js';
import { encodePng, writePng } from './canvas.js';
import { renderLineCharts } from './curves.js';
import { escapeHtml, renderReportHtml, writeReport } from './report.js';
import { REGION_COLORS, paintSlice, renderOverlayMontage, renderSliceFigure } from './slices.js';
import { createFigure } from './canvas.js';

const LPS: Affine = [
  [-1, 0, 0, 0],
  [0, -1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];
const RAS: Affine = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

function pixel(figure: ReturnType<typeof createFigure>, x: number, y: number): number[] {
  const rgba = figure.getPixelRGBA(x, y);
  return [rgba >>> 24, (rgba >>> 16) & 0xff, (rgba >>> 8) & 0xff, rgba & 0xff];
}

describe('paintSlice', () => {
  // 4x3x2 scan: value = i + 1 on slice 1, with a display window [0, 4].
  const data = new Float32Array(24);
  for (let j = 0; j < 3; j++) for (let i = 0; i < 4; i++) data[12 + i + 4 * j] = i + 1;

  it('maps grey values through the window, radiologically for an LPS affine', () => {
    const figure = createFigure(4, 3, '#000000');
    paintSlice(figure, { data, shape: [4, 3, 2], affine: LPS }, 1, { left: 0, top: 0, scale: 1 }, { window: [0, 4] });
    // LPS: i grows towards the patient's right, shown on the left: voxel i=3 (value 4 -> 255) lands in column 0.
    expect(pixel(figure, 0, 0)).toEqual([255, 255, 255, 255]);
    expect(pixel(figure, 3, 0)).toEqual([64, 64, 64, 255]);
  });

  it('keeps RAS columns and flips rows so anterior is up', () => {
    const figure = createFigure(4, 3, '#000000');
    const marked = new Float32Array(24);
    marked[12 + 0 + 4 * 2] = 4; // i = 0, j = 2 (most anterior in RAS)
    paintSlice(figure, { data: marked, shape: [4, 3, 2], affine: RAS }, 1, { left: 0, top: 0, scale: 1 }, { window: [0, 4] });
    expect(pixel(figure, 0, 0)).toEqual([255, 255, 255, 255]);
    expect(pixel(figure, 0, 2)).toEqual([0, 0, 0, 255]);
  });

  it('blends overlay colours with alpha', () => {
    const figure = createFigure(4, 3, '#000000');
    const mask = new Uint8Array(24);
    mask[12 + 3] = 1; // i = 3, j = 0
    paintSlice(figure, { data, shape: [4, 3, 2], affine: LPS }, 1, { left: 0, top: 0, scale: 1 }, {
      window: [0, 4],
      overlays: [{ mask, color: REGION_COLORS.TC }],
      alpha: 0.5,
    });
    const [r, g, b] = REGION_COLORS.TC;
    expect(pixel(figure, 0, 0)).toEqual([Math.round((255 + r) / 2), Math.round((255 + g) / 2), Math.round((255 + b) / 2), 255]);
  });

  it('rejects a slice index outside the volume', () => {
    expect(() => paintSlice(createFigure(4, 3), { data, shape: [4, 3, 2], affine: LPS }, 2, { left: 0, top: 0, scale: 1 })).toThrow(ArgumentError);
  });
});

const python = referencePython(['PIL']);

describe('figures as PNG files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-figures-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('renders the seed figure: three panels, masks white where set', () => {
    const shape = [8, 8, 3] as const;
    const scan = new Float32Array(192).fill(1);
    const truth = new Uint8Array(192);
    truth[64 + 2 + 8 * 2] = 1; // slice 1, i = 2, j = 2
    const figure = renderSliceFigure({ scan: { data: scan, shape, affine: RAS }, truth, prediction: new Uint8Array(192), z: 1, dice: 0.5, scale: 2 });
    // margin 16 + 3 panels of 16 px + margins; title band 34 px.
    expect([figure.width, figure.height]).toEqual([16 + 3 * (16 + 16), 34 + 16 + 16]);
    // Truth panel starts at x = 16 + 32 = 48; voxel (2, 2) in RAS is column 2, row 8 - 1 - 2 = 5, scale 2.
    expect(pixel(figure, 48 + 4, 34 + 10)).toEqual([255, 255, 255, 255]);
    expect(pixel(figure, 48 + 8, 34 + 10)).toEqual([0, 0, 0, 255]);
  });

  it.skipIf(!python)(`writes PNGs that an independent reader decodes${python ? '' : ' (skipped: Debian python3-pil missing)'}`, async () => {
    const shape = [20, 16, 6] as const;
    const scan = Float32Array.from({ length: 20 * 16 * 6 }, (_, v) => (v % 20) * 3);
    const wt = new Uint8Array(scan.length);
    for (let k = 2; k < 4; k++) for (let j = 5; j < 9; j++) for (let i = 5; i < 9; i++) wt[i + 20 * (j + 16 * k)] = 1;
    const file = path.join(dir, 'montage.png');
    const figure = renderOverlayMontage({ data: scan, shape, affine: RAS }, { WT: wt }, { count: 2, columns: 2, scale: 2, title: 'case' });
    await writePng(file, figure);
    const decoded = runPythonJson<{ size: number[]; mode: string; greenish: number }>(
      python!,
      `
import sys, json
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
px = list(im.getdata())
print(json.dumps({"size": list(im.size), "mode": im.mode, "greenish": sum(1 for r, g, b in px if g > r + 40 and g > b + 40)}))`,
      [file],
    );
    expect(decoded.size).toEqual([figure.width, figure.height]);
    // Two slices through the tumour, 4x4 voxels each at scale 2: 2 * 16 * 4 = 128 tinted pixels.
    expect(decoded.greenish).toBe(128);
  });

  it('charts reject series whose length differs from x', () => {
    expect(() => renderLineCharts([{ title: 't', xLabel: 'epoch', x: [1, 2], series: [{ label: 'loss', color: '#000', values: [1] }] }])).toThrow(ArgumentError);
  });

  it('charts encode to a PNG of the requested size', async () => {
    const png = await encodePng(renderLineCharts([{ title: 'Loss', xLabel: 'epoch', x: [1, 2, 3], series: [{ label: 'train', color: '#1f77b4', values: [1, 0.5, Number.NaN] }] }], { width: 300, height: 200 }));
    expect(Array.from(png.slice(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const view = new DataView(png.buffer, png.byteOffset);
    expect([view.getUint32(16), view.getUint32(20)]).toEqual([300, 200]);
  });

  it('writes an HTML report that escapes text and references figures relatively', async () => {
    const file = path.join(dir, 'report.html');
    await writeReport(file, 'Run <1>', [
      { kind: 'table', columns: ['case', 'WT Dice'], rows: [['A&B', 0.91234], ['C', Number.NaN], ['D', null]] },
      { kind: 'figure', src: 'figures/a.png', caption: 'slice "40"' },
    ]);
    const html = await fs.readFile(file, 'utf8');
    expect(html).toContain('<title>Run &lt;1&gt;</title>');
    expect(html).toContain('<td>A&amp;B</td><td class="num">0.9123</td>');
    expect(html).toContain('<td class="num">NaN</td>');
    expect(html).toContain('<td class="na">n/a</td>');
    expect(html).toContain('<img src="figures/a.png" alt="slice &quot;40&quot;">');
    expect(html).not.toMatch(/https?:\/\//);
    expect(escapeHtml(`'`)).toBe('&#39;');
    expect(renderReportHtml('x', [])).toContain('<h1>x</h1>');
  });
});
