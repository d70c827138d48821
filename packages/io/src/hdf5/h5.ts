/**
 * The one place that loads h5wasm (the HDF5 C library compiled to WebAssembly; its Node build opens files
 * by their real path) and the small conversions every store module needs.
 */
import type { Dataset as H5Dataset, File as H5File, Group as H5Group, h5wasm as H5wasmModule } from 'h5wasm/node';

export type { H5Dataset, H5File, H5Group };
type H5wasm = typeof H5wasmModule;

let loaded: H5wasm | undefined;

/**
 * h5wasm once its WebAssembly module is ready. Imported on first use so that code which never touches
 * HDF5 (the NIfTI decoding workers of convert) does not instantiate a WebAssembly heap.
 */
export async function loadH5wasm(): Promise<H5wasm> {
  if (loaded === undefined) {
    const h5wasm = (await import('h5wasm/node')).default;
    await h5wasm.ready;
    loaded = h5wasm;
  }
  return loaded;
}

/** The dataset at `name`, or undefined when absent or not a dataset; only after {@link loadH5wasm}. */
export function getDataset(group: H5Group, name: string): H5Dataset | undefined {
  const entity = group.get(name);
  return loaded !== undefined && entity instanceof loaded.Dataset ? entity : undefined;
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
