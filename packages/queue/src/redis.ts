/**
 * Redis addresses and connections. ioredis retries a lost connection forever by default, which is right for a
 * worker riding out a Redis restart and wrong for a command whose Redis is not there at all: every entry point
 * first checks Redis with one bounded attempt ({@link checkRedis}), so an unreachable Redis is one clear error
 * within seconds, never a hang.
 */
import { Redis } from 'ioredis';
import { QueueUrlError, RedisUnavailableError } from './errors.js';

/** A parsed queue address. */
export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** `rediss://`: TLS. */
  tls: boolean;
  /** The address without its password, for messages. */
  display: string;
}

/**
 * Parses `redis://[user:password@]HOST[:PORT][/DB]` (or `rediss://` for TLS); the port defaults to 6379, the
 * database to 0.
 * @throws {QueueUrlError} for another scheme, a missing host, a bad port or database number.
 * @example parseRedisUrl('redis://10.0.0.5:6379/2') // { host: '10.0.0.5', port: 6379, db: 2, tls: false, … }
 */
export function parseRedisUrl(url: string): RedisTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueueUrlError(url, 'is not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new QueueUrlError(url, `has scheme ${parsed.protocol.replace(/:$/, '')}, not redis`);
  if (parsed.hostname === '') throw new QueueUrlError(url, 'names no host');
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new QueueUrlError(url, `has port ${parsed.port}`);
  const dbText = parsed.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw new QueueUrlError(url, `has database '${dbText}', not a number`);
  const db = dbText === '' ? 0 : Number(dbText);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const target: RedisTarget = {
    host,
    port,
    db,
    tls: parsed.protocol === 'rediss:',
    display: `${parsed.protocol}//${parsed.username === '' ? '' : `${decodeURIComponent(parsed.username)}@`}${parsed.host}/${db}`,
  };
  if (parsed.username !== '') target.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') target.password = decodeURIComponent(parsed.password);
  return target;
}

/** The ioredis options @brats/queue sets (a plain object that ioredis and BullMQ both accept). */
export interface RedisConnectionSettings {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
  connectTimeout: number;
  maxRetriesPerRequest: number | null;
  retryStrategy: (times: number) => number | null;
  enableAutoPipelining?: boolean;
}

/**
 * ioredis options for `target`. Reconnection is unbounded (with a back-off up to 5 s) and commands wait for it
 * (`maxRetriesPerRequest: null`, which BullMQ's blocking connections need), so call {@link checkRedis} first.
 */
export function redisOptions(target: RedisTarget, connectTimeoutMs = 5000): RedisConnectionSettings {
  const options: RedisConnectionSettings = {
    host: target.host,
    port: target.port,
    db: target.db,
    connectTimeout: connectTimeoutMs,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(250 * 2 ** Math.min(times, 5), 5000),
  };
  if (target.username !== undefined) options.username = target.username;
  if (target.password !== undefined) options.password = target.password;
  if (target.tls) options.tls = {};
  return options;
}

/** What {@link checkRedis} learnt about the server. */
export interface RedisInfo {
  /** e.g. `7.0.15`. */
  version: string;
  /** `appendonly yes`: every write logged, so a restart loses (almost) nothing. */
  appendOnly: boolean;
  /** RDB snapshots configured (`save` rules): a restart loses what came after the last snapshot. */
  snapshots: boolean;
  /** `maxmemory-policy`; BullMQ needs `noeviction` (an evicting Redis may drop jobs). */
  maxmemoryPolicy: string;
}

function infoField(info: string, name: string): string | undefined {
  const match = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

/**
 * Connects once (no retry), sends PING, reads the server's version and persistence settings, and disconnects;
 * everything within `timeoutMs`.
 * @throws {RedisUnavailableError} when Redis refuses, is unknown, rejects the password or does not answer in time.
 */
export async function checkRedis(target: RedisTarget, timeoutMs = 3000): Promise<RedisInfo> {
  const client = new Redis({
    ...redisOptions(target, timeoutMs),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The promises below only say "Connection is closed"; the event says why (ECONNREFUSED, ENOTFOUND, NOAUTH…).
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${(timeoutMs / 1000).toFixed(1)} s`)), timeoutMs);
  });
  try {
    const work = (async (): Promise<RedisInfo> => {
        await client.connect();
        await client.ping();
        const info = await client.info();
        return {
          version: infoField(info, 'redis_version') ?? 'unknown',
          appendOnly: infoField(info, 'aof_enabled') === '1',
          snapshots: (await saveRules(client)) !== '',
          maxmemoryPolicy: infoField(info, 'maxmemory_policy') ?? 'unknown',
        };
      })();
    // After a timeout the disconnect below rejects the abandoned attempt; that rejection is not news.
    work.catch(() => {});
    return await Promise.race([work, deadline]);
  } catch (error) {
    const reported = cause ?? error;
    const reason = (reported instanceof Error && reported.message !== '' ? reported.message : String(reported)).replace(/\.+$/, '');
    throw new RedisUnavailableError(target.display, reason, { cause: reported });
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/** The `save` rules, or '' when none (or when CONFIG is not allowed, as on some managed services: then unknown, taken as none). */
async function saveRules(client: Redis): Promise<string> {
  try {
    const reply = (await client.config('GET', 'save')) as string[];
    return reply[1] ?? '';
  } catch {
    return '';
  }
}

/** One line on what a Redis restart would lose, from {@link checkRedis}'s findings. */
export function describePersistence(info: RedisInfo): string {
  if (info.appendOnly) return 'persistence: append-only file (a restart keeps every job)';
  if (info.snapshots) return 'persistence: snapshots only (a restart loses what changed since the last one; set appendonly yes)';
  return 'persistence: none (a Redis restart loses the queue; set appendonly yes)';
}
