/** Start-up: load the model and its engine once, open the job store, build the app and listen. */
import { readModelManifest } from '@brats/io';
import { DEFAULT_BATCH_SIZE, openBundleEngine } from '@brats/ncs2-runtime';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { JobStore } from './job-store.js';
import { JobService, type SharedJobQueue } from './jobs.js';
import { createServerMetrics } from './metrics.js';
import { resolveServerOptions, type ServerOptions } from './options.js';
import type { LoadedModel } from './segment.js';

/** A server with its model loaded and its job service started. */
export interface BratsServer {
  app: FastifyInstance;
  options: ServerOptions;
  model: LoadedModel;
  jobs: JobService;
  /** Stops listening, lets running jobs finish (queued ones run after a restart) and frees the engine. */
  close(): Promise<void>;
}

/** What a server may share with others. */
export interface SharedParts {
  /**
   * A queue shared by several servers and workers (`CohortQueue` of @brats/queue): uploads become its jobs, run by
   * any `brats worker`, and `dataDir` must be the folder they all share. The server closes it when it closes.
   */
  queue?: SharedJobQueue;
}

/**
 * Loads the model bundle's engine once and prepares the API and viewer, without listening (tests use `app.inject`).
 * @throws {ModelBundleError} for a bad bundle; {@link EngineUnavailableError} when no engine can run it; {@link ArgumentError} for bad options.
 */
export async function createServer(overrides: Partial<ServerOptions>, environment: NodeJS.ProcessEnv = process.env, shared: SharedParts = {}): Promise<BratsServer> {
  const options = resolveServerOptions(overrides, environment);
  const manifest = await readModelManifest(options.model);
  // Warmed up with the batch size every segmentation uses: the first upload runs at full speed.
  const selection = await openBundleEngine(options.model, options.engine, { warmupBatch: DEFAULT_BATCH_SIZE });
  const model: LoadedModel = { bundle: options.model, manifest, engine: selection.engine, reason: selection.reason };
  const metrics = createServerMetrics();
  const jobs = new JobService(new JobStore(options.dataDir), model, options, metrics, undefined, shared.queue);
  try {
    await jobs.start();
    const app = await buildApp({ options, model, jobs, metrics });
    let closed = false;
    return {
      app,
      options,
      model,
      jobs,
      async close() {
        if (closed) return;
        closed = true;
        await app.close();
        await jobs.stop();
        await model.engine.dispose();
      },
    };
  } catch (error) {
    await jobs.stop();
    await model.engine.dispose();
    throw error;
  }
}

/**
 * {@link createServer}, then listens on `options.host:options.port`; `url` is where it answers.
 * @throws as {@link createServer}; the listen error when the port is taken.
 */
export async function startServer(overrides: Partial<ServerOptions>, environment: NodeJS.ProcessEnv = process.env, shared: SharedParts = {}): Promise<BratsServer & { url: string }> {
  const server = await createServer(overrides, environment, shared);
  try {
    const address = await server.app.listen({ host: server.options.host, port: server.options.port });
    return { ...server, url: address };
  } catch (error) {
    await server.close();
    throw error;
  }
}
