/** Line charts of training histories (loss and validation Dice per epoch). */
import { ArgumentError } from '../errors.js';
import { createFigure, drawText, type Figure } from './canvas.js';
import { surfaceOf } from './surface.js';

/** One line of a chart. */
export interface ChartSeries {
  label: string;
  color: string;
  /** y value per x (NaN leaves a gap). */
  values: readonly number[];
}

/** One chart panel. */
export interface ChartPanel {
  title: string;
  xLabel: string;
  /** x value of each point (e.g. epochs 1..N). */
  x: readonly number[];
  /**
   * x counts something (epochs): ticks fall on whole numbers only, and the first x is always labelled, so the
   * axis shows where the count starts (epoch 1, not 0).
   */
  integerX?: boolean;
  series: readonly ChartSeries[];
  /** Fixed y range; default the data's range with 5% padding. */
  yRange?: readonly [number, number];
  /** One line under the title saying what a reader could misread (why a loss goes below 0, say). */
  note?: string;
}

/** The smallest round step (1, 2, 2.5 or 5 times a power of ten; no 2.5 for whole numbers) that gives at most `count` intervals. */
function niceStep(low: number, high: number, count: number, integer = false): number {
  const span = high - low || 1;
  const rough = span / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = (integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]).map((m) => m * power).find((s) => s >= rough) ?? rough;
  return integer ? Math.max(1, Math.round(step)) : step;
}

function niceTicks(low: number, high: number, count: number): number[] {
  const step = niceStep(low, high, count);
  const ticks: number[] = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/**
 * The x values that {@link renderLineCharts} labels under a panel: about six round values over the panel's x
 * range, and with `integerX` whole numbers only, starting with the first x.
 * @example computeXTicks({ title: 'Loss', xLabel: 'epoch', x: [1, 2, 3], integerX: true, series: [] }) // [1, 2, 3]
 */
export function computeXTicks(panel: ChartPanel): number[] {
  const low = Math.min(...panel.x);
  const high = Math.max(...panel.x, low + 1);
  if (panel.integerX !== true) return niceTicks(low, high, 6);
  const first = Math.ceil(low);
  const step = niceStep(low, high, 6, true);
  const ticks = [first];
  // Round multiples of the step after the first, none crowding it (closer than half a step).
  for (let tick = Math.ceil((first + step / 2) / step) * step; tick <= high; tick += step) ticks.push(tick);
  return ticks;
}

function formatTick(value: number): string {
  return Math.abs(value) >= 100 || Number.isInteger(value) ? String(Math.round(value)) : value.toPrecision(3).replace(/0+$/, '').replace(/\.$/, '');
}

/**
 * Draws chart panels side by side (each 420x300 px by default), with axes, ticks, a legend and titles.
 * @throws {ArgumentError} when a series length differs from its panel's x.
 */
export function renderLineCharts(panels: readonly ChartPanel[], options: { width?: number; height?: number } = {}): Figure {
  const width = options.width ?? 420;
  const height = options.height ?? 300;
  const figure = createFigure(width * panels.length, height, '#ffffff');
  const context = surfaceOf(figure).getContext('2d');
  panels.forEach((panel, index) => {
    for (const series of panel.series) {
      if (series.values.length !== panel.x.length) {
        throw new ArgumentError('renderLineCharts', `panels[${index}].series`, `'${series.label}' has ${series.values.length} values for ${panel.x.length} x values`);
      }
    }
    const left = index * width + 60;
    const right = (index + 1) * width - 20;
    const top = panel.note === undefined ? 40 : 52;
    const bottom = height - 50;
    const finite = panel.series.flatMap((s) => s.values.filter(Number.isFinite));
    let [yLow, yHigh] = panel.yRange ?? [Math.min(...finite), Math.max(...finite)];
    if (!Number.isFinite(yLow) || !Number.isFinite(yHigh)) [yLow, yHigh] = [0, 1];
    if (panel.yRange === undefined) {
      const pad = (yHigh - yLow || Math.abs(yHigh) || 1) * 0.05;
      yLow -= pad;
      yHigh += pad;
    }
    const xLow = Math.min(...panel.x);
    const xHigh = Math.max(...panel.x, xLow + 1);
    const toX = (x: number): number => left + ((x - xLow) / (xHigh - xLow)) * (right - left);
    const toY = (y: number): number => bottom - ((y - yLow) / (yHigh - yLow)) * (bottom - top);
    drawText(figure, panel.title, (left + right) / 2, 24, { align: 'center', size: 12 });
    if (panel.note !== undefined) drawText(figure, panel.note, (left + right) / 2, 40, { align: 'center', size: 9, color: '#555555' });
    drawText(figure, panel.xLabel, (left + right) / 2, height - 12, { align: 'center', size: 10 });
    context.strokeStyle = '#dddddd';
    context.lineWidth = 1;
    for (const tick of niceTicks(yLow, yHigh, 5)) {
      const y = toY(tick);
      context.beginPath();
      context.moveTo(left, y);
      context.lineTo(right, y);
      context.stroke();
      drawText(figure, formatTick(tick), left - 6, y + 4, { align: 'right', size: 9, color: '#444444' });
    }
    for (const tick of computeXTicks(panel)) {
      drawText(figure, formatTick(tick), toX(tick), bottom + 16, { align: 'center', size: 9, color: '#444444' });
    }
    context.strokeStyle = '#000000';
    context.beginPath();
    context.moveTo(left, top);
    context.lineTo(left, bottom);
    context.lineTo(right, bottom);
    context.stroke();
    panel.series.forEach((series, s) => {
      context.strokeStyle = series.color;
      context.fillStyle = series.color;
      context.lineWidth = 2;
      let drawing = false;
      context.beginPath();
      series.values.forEach((value, n) => {
        if (!Number.isFinite(value)) {
          drawing = false;
          return;
        }
        const x = toX(panel.x[n]!);
        const y = toY(value);
        if (drawing) context.lineTo(x, y);
        else context.moveTo(x, y);
        drawing = true;
      });
      context.stroke();
      series.values.forEach((value, n) => {
        if (Number.isFinite(value)) context.fillRect(toX(panel.x[n]!) - 2, toY(value) - 2, 4, 4);
      });
      const legendY = top + 14 + s * 16;
      context.fillRect(right - 120, legendY - 6, 14, 3);
      drawText(figure, series.label, right - 100, legendY, { size: 9 });
    });
  });
  return figure;
}
