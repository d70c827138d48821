/**
 * Raster figures without a browser or native canvas: pureimage (a pure-JavaScript 2D canvas with PNG
 * output) and the DejaVu Sans font shipped by the dejavu-fonts-ttf package, so figures look the same on
 * every machine whatever fonts it has.
 */
import { createRequire } from 'node:module';
import { PassThrough } from 'node:stream';
import type * as PImage from 'pureimage';
import { writeFileAtomic } from '../atomic.js';
import { surfaceOf } from './surface.js';

const require = createRequire(import.meta.url);
let canvasModule: typeof PImage | undefined;

/**
 * pureimage, loaded on the first figure (its CommonJS build, so drawing stays synchronous): importing @brats/io
 * for reading scans or segmenting them should not pay for a canvas and its font parser.
 */
function canvas(): typeof PImage {
  canvasModule ??= require('pureimage') as typeof PImage;
  return canvasModule;
}

/**
 * A raster image (RGBA, 8 bits per channel), drawn by the functions of this module and written with
 * {@link writePng}. Its drawing surface (pureimage's) stays inside @brats/io: its types are not part of ours.
 */
export interface Figure {
  readonly width: number;
  readonly height: number;
  /** The pixel at (x, y) as 0xRRGGBBAA. */
  getPixelRGBA(x: number, y: number): number;
}


/** Font family name registered for figure text. */
export const FIGURE_FONT = 'DejaVu Sans';

let fontLoaded = false;

function ensureFont(): void {
  if (fontLoaded) return;
  const fontPath = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');
  canvas().registerFont(fontPath, FIGURE_FONT).loadSync();
  fontLoaded = true;
}

/** A new figure of `width` x `height` pixels filled with `background` (CSS colour). */
export function createFigure(width: number, height: number, background = '#ffffff'): Figure {
  ensureFont();
  const figure = canvas().make(Math.round(width), Math.round(height));
  const context = figure.getContext('2d');
  context.fillStyle = background;
  context.fillRect(0, 0, figure.width, figure.height);
  return figure;
}

/** Draws text with its baseline at (x, y); `align` is left, center or right. */
export function drawText(
  figure: Figure,
  text: string,
  x: number,
  y: number,
  options: { size?: number; color?: string; align?: 'left' | 'center' | 'right' } = {},
): void {
  const context = surfaceOf(figure).getContext('2d');
  context.font = `${options.size ?? 14}pt '${FIGURE_FONT}'`;
  context.fillStyle = options.color ?? '#000000';
  context.textAlign = (options.align ?? 'left') as never;
  context.fillText(text, x, y);
}

/** Encodes a figure as PNG bytes. */
export async function encodePng(figure: Figure): Promise<Uint8Array> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  await canvas().encodePNGToStream(surfaceOf(figure), sink);
  return Buffer.concat(chunks);
}

/** Writes a figure to a PNG file atomically. */
export async function writePng(path: string, figure: Figure): Promise<void> {
  await writeFileAtomic(path, await encodePng(figure));
}
