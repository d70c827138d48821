/** Serves packed tarballs (package name → .tgz path) as an npm registry on loopback; see tarball-registry.mjs. */
export declare function startTarballRegistry(packed: ReadonlyMap<string, string>): Promise<{ url: string; close: () => Promise<void> }>;
