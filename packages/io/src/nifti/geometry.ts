/**
 * NIfTI orientation math: qform quaternion ↔ matrix, following the definitions in nifti1.h
 * (nifti_quatern_to_mat44 / nifti_mat44_to_quatern). Written here because the reader library computes
 * only one of the two directions and prefers qform over sform, where the standard and nibabel prefer sform.
 */
import type { Affine } from '../volume.js';

type Row = [number, number, number, number];

/** The qform affine from quaternion (b, c, d), offsets, voxel sizes and qfac. */
export function quaternionToAffine(
  quaternion: readonly [number, number, number],
  offset: readonly [number, number, number],
  pixdim: readonly [number, number, number],
  qfac: number,
): Affine {
  const [b, c, d] = quaternion;
  const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
  const r = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
  const scale = [pixdim[0] > 0 ? pixdim[0] : 1, pixdim[1] > 0 ? pixdim[1] : 1, (pixdim[2] > 0 ? pixdim[2] : 1) * (qfac < 0 ? -1 : 1)];
  const rows: Row[] = [0, 1, 2].map((i) => [
    r[i]![0]! * scale[0]!,
    r[i]![1]! * scale[1]!,
    r[i]![2]! * scale[2]!,
    offset[i]!,
  ]) as Row[];
  return [rows[0]!, rows[1]!, rows[2]!, [0, 0, 0, 1]];
}

/** Quaternion parameters that reproduce the rotation part of `affine` as a qform (nifti_mat44_to_quatern). */
export function affineToQuaternion(affine: Affine): {
  quaternion: [number, number, number];
  offset: [number, number, number];
  pixdim: [number, number, number];
  qfac: number;
} {
  const col = (j: 0 | 1 | 2): [number, number, number] => [affine[0][j], affine[1][j], affine[2][j]];
  const norm = (v: [number, number, number]): number => Math.hypot(v[0], v[1], v[2]);
  const columns = [col(0), col(1), col(2)];
  const pixdim = columns.map((v) => norm(v) || 1) as [number, number, number];
  const m = columns.map((v, j) => v.map((x) => x / pixdim[j]!)) as number[][]; // m[j] = unit column j
  // r[i][j] = row i, column j of the unit rotation.
  const r = [0, 1, 2].map((i) => [m[0]![i]!, m[1]![i]!, m[2]![i]!]);
  const det =
    r[0]![0]! * (r[1]![1]! * r[2]![2]! - r[1]![2]! * r[2]![1]!) -
    r[0]![1]! * (r[1]![0]! * r[2]![2]! - r[1]![2]! * r[2]![0]!) +
    r[0]![2]! * (r[1]![0]! * r[2]![1]! - r[1]![1]! * r[2]![0]!);
  let qfac = 1;
  if (det < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) r[i]![2] = -r[i]![2]!;
  }
  const [r11, r12, r13] = r[0]! as [number, number, number];
  const [r21, r22, r23] = r[1]! as [number, number, number];
  const [r31, r32, r33] = r[2]! as [number, number, number];
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { quaternion: [b, c, d], offset: [affine[0][3], affine[1][3], affine[2][3]], pixdim, qfac };
}
