import type { DType } from '../volume.js';

/** NIfTI datatype codes of the supported dtypes (nifti1.h DT_*). */
export const NIFTI_DATATYPE_CODES: Readonly<Record<DType, number>> = {
  uint8: 2,
  int16: 4,
  int32: 8,
  float32: 16,
  float64: 64,
  int8: 256,
  uint16: 512,
  uint32: 768,
};

const DTYPE_BY_CODE = new Map<number, DType>(
  Object.entries(NIFTI_DATATYPE_CODES).map(([dtype, code]) => [code, dtype as DType]),
);

/** Names of NIfTI datatypes that exist but that @brats does not read, for error messages. */
const UNSUPPORTED_NAMES: Readonly<Record<number, string>> = {
  1: 'binary',
  32: 'complex64',
  128: 'rgb24',
  1024: 'int64',
  1280: 'uint64',
  1536: 'float128',
  1792: 'complex128',
  2048: 'complex256',
  2304: 'rgba32',
};

/** The dtype of a NIfTI datatype code, or undefined when unsupported. */
export function dtypeFromNiftiCode(code: number): DType | undefined {
  return DTYPE_BY_CODE.get(code);
}

/** A readable name for any datatype code, supported or not. */
export function niftiCodeName(code: number): string {
  return DTYPE_BY_CODE.get(code) ?? UNSUPPORTED_NAMES[code] ?? `unknown code ${code}`;
}
