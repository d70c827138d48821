export declare const repositoryRoot: string;
export declare function sharedDataDir(): string | undefined;
export declare const NO_SHARED_DATA: string;
export declare function referencePython(modules: string[]): string | undefined;
export declare function runPythonJson<T = unknown>(python: string, script: string, args?: string[]): T;
