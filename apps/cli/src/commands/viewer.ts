import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeStaticViewer } from '@brats/server';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { MODEL_OPTION_HELP, resolveModelArgument } from '../default-model.js';
import { UsageError } from '../errors.js';

interface ViewerFlags {
  out?: string;
  model?: string;
  force?: boolean;
}

function size(bytes: number): string {
  return bytes < 1e5 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * `brats viewer --out DIR [--model BUNDLE] [--force]`: the viewer as a static site that segments in the browser
 * (ONNX Runtime Web; the scans never leave the machine), for any static host or a local folder served over http.
 */
export function registerViewerCommand(program: Command, context: CliContext): void {
  program
    .command('viewer')
    .description('write the viewer as a static site that segments in the browser (HTML, JS, ONNX Runtime Web, the ONNX model): no server needed, the scans never leave the machine')
    .option('--out <dir>', 'folder to write the site into (created; must be empty unless --force)')
    .option('--model <bundle>', `${MODEL_OPTION_HELP}; it needs model.onnx`)
    .option('--force', 'replace --out when it holds files')
    .action(async (flags: ViewerFlags) => {
      if (flags.out === undefined) throw new UsageError('--out <dir> is required: the folder to write the site into');
      const out = path.resolve(flags.out);
      const entries = await fs.readdir(out).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [];
        throw new UsageError(`--out ${flags.out}: ${error.code === 'ENOTDIR' ? 'is a file, not a folder' : error.message}`);
      });
      if (entries.length > 0 && flags.force !== true) throw new UsageError(`--out ${flags.out}: exists and is not empty; choose another folder or add --force to replace it`);
      const bundle = await resolveModelArgument(flags.model);
      const site = await writeStaticViewer(out, { bundle, force: flags.force === true });
      printLine(context, `viewer: ${site.outDir} (${site.files.length} files, ${size(site.bytes)}; model from ${bundle})`);
      for (const file of site.files) printLine(context, `  ${file.path.padEnd(44)} ${size(file.bytes).padStart(9)}`);
      printLine(context, `serve the folder over http, e.g. python3 -m http.server --directory ${JSON.stringify(site.outDir)} 8000, and open http://127.0.0.1:8000/`);
      printLine(context, 'WebAssembly threads need the headers in _headers (cross-origin isolation); without them the page runs on one thread');
    });
}
