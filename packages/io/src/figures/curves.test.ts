import { describe, expect, it } from 'vitest';
import { ArgumentError } from '../errors.js';
import { computeXTicks, renderLineCharts, type ChartPanel } from './curves.js';

function epochs(first: number, last: number): ChartPanel {
  const x = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  return { title: 'Loss', xLabel: 'epoch', x, integerX: true, series: [{ label: 'training', color: '#000000', values: x.map((value) => 1 / value) }] };
}

describe('computeXTicks', () => {
  it.each([
    // Epoch axes start at epoch 1 and are labelled there; later ticks are round multiples of a whole step.
    [1, 2, [1, 2]],
    [1, 3, [1, 2, 3]],
    [1, 10, [1, 2, 4, 6, 8, 10]],
    [1, 90, [1, 20, 40, 60, 80]],
    [1, 100, [1, 20, 40, 60, 80, 100]],
    [35, 90, [35, 40, 50, 60, 70, 80, 90]],
  ])('epochs %i..%i are labelled %j', (first, last, expected) => {
    expect(computeXTicks(epochs(first, last))).toEqual(expected);
  });

  it('a single epoch gets whole-number ticks, never 1.2 or 1.4', () => {
    expect(computeXTicks(epochs(1, 1))).toEqual([1, 2]);
  });

  it('without integerX keeps round fractional ticks', () => {
    expect(computeXTicks({ ...epochs(1, 2), integerX: false })).toEqual([1, 1.2, 1.4, 1.6, 1.8, 2]);
  });

  it('writes a note under the title when a panel has one, and nothing there otherwise', () => {
    // Dark pixels in the band between the title and the plot.
    const inkInNoteBand = (panel: ChartPanel): number => {
      const figure = renderLineCharts([panel], { width: 420, height: 300 });
      let dark = 0;
      for (let y = 31; y < 44; y++) for (let x = 64; x < 400; x++) if ((figure.getPixelRGBA(x, y) >>> 24) < 160) dark++;
      return dark;
    };
    expect(inkInNoteBand(epochs(1, 3))).toBe(0);
    expect(inkInNoteBand({ ...epochs(1, 3), note: 'below 0: the Dice term is -log of a smoothed Dice' })).toBeGreaterThan(50);
  });

  it('renders an epoch panel, and still rejects series whose length differs from x', () => {
    expect(renderLineCharts([epochs(1, 3)], { width: 200, height: 150 }).width).toBe(200);
    expect(() => renderLineCharts([{ ...epochs(1, 3), series: [{ label: 'loss', color: '#000000', values: [1] }] }])).toThrow(ArgumentError);
  });
});
