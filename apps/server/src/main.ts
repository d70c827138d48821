#!/usr/bin/env node
/**
 * `node dist/main.js --model BUNDLE [--port 8080] [--host 127.0.0.1] [--data-dir DIR]` (or the `brats-server`
 * bin): the server on its own, without the brats CLI. Settings not given as flags come from the environment.
 */
import { parseArgs } from 'node:util';
import { BratsError } from '@brats/io';
import { startServer } from './server.js';
import type { ServerOptions } from './options.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      engine: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  const overrides: Partial<ServerOptions> = { logger: values.quiet !== true };
  if (values.model !== undefined) overrides.model = values.model;
  if (values.port !== undefined) overrides.port = Number(values.port);
  if (values.host !== undefined) overrides.host = values.host;
  if (values['data-dir'] !== undefined) overrides.dataDir = values['data-dir'];
  if (values.engine !== undefined) overrides.engine = values.engine;
  const server = await startServer(overrides);
  process.stdout.write(`brats server: ${server.url} (engine ${server.model.engine.name} on ${server.model.engine.device}: ${server.model.reason}; data ${server.options.dataDir})\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${error instanceof BratsError || error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof BratsError ? 2 : 3);
});
