/**
 * The one place that loads h5wasm (the HDF5 C library compiled to WebAssembly; its Node build opens files
 * by their real path) and the small conversions every store module needs.
 */
import h5wasm from 'h5wasm/node';
import type { Dataset as H5Dataset, Group as H5Group } from 'h5wasm/node';

export type { H5Dataset, H5Group };
export type H5File = InstanceType<typeof h5wasm.File>;

/** h5wasm once its WebAssembly module is ready. */
export async function loadH5wasm(): Promise<typeof h5wasm> {
  await h5wasm.ready;
  return h5wasm;
}

/** The dataset at `name`, or undefined when absent or not a dataset. */
export function getDataset(group: H5Group, name: string): H5Dataset | undefined {
  const entity = group.get(name);
  return entity instanceof h5wasm.Dataset ? entity : undefined;
}

/** A string or string-list dataset's value as a list (the seed stores single strings as shape [1]). */
export function readStrings(dataset: H5Dataset): string[] {
  const value = dataset.value;
  if (value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => (typeof item === 'string' ? item : item instanceof Uint8Array ? new TextDecoder().decode(item) : String(item)));
}

/** Writes a 1D variable-length UTF-8 string dataset (h5py reads it as `dtype('O')`). */
export function writeStrings(group: H5Group, name: string, values: readonly string[]): void {
  group.create_dataset({ name, data: [...values], shape: [values.length], dtype: 'S' });
}
