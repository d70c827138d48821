/**
 * Resampling between a scan's own grid and the model's training spacing, as nnU-Net and Brainchop's "conform" do
 * before a network that learnt one voxel size: images linearly to the model's spacing, the model's probabilities
 * linearly back onto the scan's grid (then thresholded there). Hand-written because no maintained JavaScript
 * package resamples 3D typed arrays; trilinear interpolation with the field of view kept (voxel centres at
 * `(n + 0.5) * scale - 0.5`, the convention of scipy's `zoom(grid_mode=True)` and skimage's `resize`).
 */
import { ArgumentError, type Affine } from '@brats/io/browser';

export type Shape3 = readonly [number, number, number];
export type Spacing3 = readonly [number, number, number];

/** The grid a scan of `shape` at `spacing` gets at `target` spacing: the same field of view, whole voxels. */
export function resampledShape(shape: Shape3, spacing: Spacing3, target: Spacing3): [number, number, number] {
  return shape.map((n, d) => Math.max(1, Math.round((n * spacing[d]!) / target[d]!))) as [number, number, number];
}

/**
 * The affine of the resampled grid: voxel n of the new grid sits where the old grid's continuous index
 * `(n + 0.5) * from / to - 0.5` is, per axis (`from` and `to` are the two shapes).
 */
export function resampledAffine(affine: Affine, from: Shape3, to: Shape3): Affine {
  const scale = from.map((n, d) => n / to[d]!);
  const rows = affine.slice(0, 3).map((row) => {
    const out = [row[0]! * scale[0]!, row[1]! * scale[1]!, row[2]! * scale[2]!, row[3]!];
    for (let d = 0; d < 3; d++) out[3]! += row[d]! * (0.5 * scale[d]! - 0.5);
    return out as [number, number, number, number];
  });
  return [rows[0]!, rows[1]!, rows[2]!, [0, 0, 0, 1]];
}

/** Per axis: for each output index, the two input indices and the weight of the second (clamped at the edges). */
function axisTable(from: number, to: number): { low: Int32Array; high: Int32Array; weight: Float32Array } {
  const low = new Int32Array(to);
  const high = new Int32Array(to);
  const weight = new Float32Array(to);
  const scale = from / to;
  for (let n = 0; n < to; n++) {
    const x = Math.min(Math.max((n + 0.5) * scale - 0.5, 0), from - 1);
    const base = Math.floor(x);
    low[n] = base;
    high[n] = Math.min(base + 1, from - 1);
    weight[n] = x - base;
  }
  return { low, high, weight };
}

/**
 * Trilinear resampling of a flat i-j-k volume (i fastest) from shape `from` to shape `to` over the same field of
 * view. Separable: along i, then j, then k. `values` may be any numeric array (a case's channels keep their stored
 * integers); the result is float32.
 * @throws {ArgumentError} when `values` does not hold `from` voxels.
 */
export function resampleLinear(values: ArrayLike<number>, from: Shape3, to: Shape3): Float32Array {
  const [fi, fj, fk] = from;
  const [ti, tj, tk] = to;
  if (values.length !== fi * fj * fk) throw new ArgumentError('resampleLinear', 'values', `has ${values.length} values for shape [${from.join(', ')}]`);
  const ai = axisTable(fi, ti);
  const aj = axisTable(fj, tj);
  const ak = axisTable(fk, tk);
  const alongI = new Float32Array(ti * fj * fk);
  for (let row = 0; row < fj * fk; row++) {
    const source = row * fi;
    const target = row * ti;
    for (let n = 0; n < ti; n++) {
      const w = ai.weight[n]!;
      alongI[target + n] = values[source + ai.low[n]!]! * (1 - w) + values[source + ai.high[n]!]! * w;
    }
  }
  const alongJ = new Float32Array(ti * tj * fk);
  for (let k = 0; k < fk; k++) {
    for (let n = 0; n < tj; n++) {
      const w = aj.weight[n]!;
      const low = (aj.low[n]! + fj * k) * ti;
      const high = (aj.high[n]! + fj * k) * ti;
      const target = (n + tj * k) * ti;
      for (let i = 0; i < ti; i++) alongJ[target + i] = alongI[low + i]! * (1 - w) + alongI[high + i]! * w;
    }
  }
  const out = new Float32Array(ti * tj * tk);
  const plane = ti * tj;
  for (let n = 0; n < tk; n++) {
    const w = ak.weight[n]!;
    const low = ak.low[n]! * plane;
    const high = ak.high[n]! * plane;
    const target = n * plane;
    for (let v = 0; v < plane; v++) out[target + v] = alongJ[low + v]! * (1 - w) + alongJ[high + v]! * w;
  }
  return out;
}
