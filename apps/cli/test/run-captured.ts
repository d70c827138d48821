import { Writable } from 'node:stream';
import { runCli } from '../src/index.js';

/** Runs the CLI in-process and captures what it prints. */
export async function runCaptured(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk, _encoding, done) {
        append(String(chunk));
        done();
      },
    });
  const code = await runCli(argv, {
    stdout: sink((text) => (stdout += text)) as never,
    stderr: sink((text) => (stderr += text)) as never,
    isTTY: false,
  });
  return { code, stdout, stderr };
}
