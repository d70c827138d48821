/** `brats serve` as a child process, for the tests that talk to a real server on loopback. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** A started `brats serve`: where it answers, what it printed so far, and its exit. */
export interface ServeProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:PORT`, as the server printed it. */
  url: string;
  /** Its exit code, once it has exited. */
  exited: Promise<number | null>;
  /** What it printed on stdout so far. */
  stdout(): string;
  /** What it printed on stderr so far. */
  stderr(): string;
}

/**
 * Spawns `command args` (a `brats serve` with `--port 0`) and resolves once it prints `brats server: URL`.
 * @throws when it exits before that, with what it printed.
 */
export async function startServeProcess(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<ServeProcess> {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += String(chunk)));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const match = /^brats server: (http:\/\/127\.0\.0\.1:\d+) /m.exec(stdout);
      if (match !== null) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`brats serve exited with ${code} before listening: ${stdout}${stderr}`)));
  });
  return { child, url, exited, stdout: () => stdout, stderr: () => stderr };
}
