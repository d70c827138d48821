import { describe, expect, it } from 'vitest';
import { closedPort } from '../test/fixtures.js';
import { CohortQueue } from './cohort-queue.js';
import { QueueUrlError, RedisUnavailableError } from './errors.js';
import { checkRedis, describePersistence, parseRedisUrl } from './redis.js';
import { startCohortWorker } from './worker.js';

describe('parseRedisUrl', () => {
  it.each([
    ['redis://127.0.0.1:6391', { host: '127.0.0.1', port: 6391, db: 0, tls: false, display: 'redis://127.0.0.1:6391/0' }],
    ['redis://queue.local', { host: 'queue.local', port: 6379, db: 0, tls: false, display: 'redis://queue.local/0' }],
    ['redis://10.0.0.5:6380/3', { host: '10.0.0.5', port: 6380, db: 3, tls: false, display: 'redis://10.0.0.5:6380/3' }],
    ['rediss://worker:s%40cret@redis.example:6390/1', { host: 'redis.example', port: 6390, db: 1, tls: true, username: 'worker', password: 's@cret', display: 'rediss://worker@redis.example:6390/1' }],
    ['redis://[::1]:6391', { host: '::1', port: 6391, db: 0, tls: false, display: 'redis://[::1]:6391/0' }],
  ])('%s', (url, expected) => {
    expect(parseRedisUrl(url)).toEqual(expected);
  });

  it.each([
    ['127.0.0.1:6379', 'is not a URL'],
    ['http://127.0.0.1:6379', 'has scheme http, not redis'],
    ['redis://127.0.0.1:6379/zero', "has database 'zero', not a number"],
    ['redis://127.0.0.1:6379/1/2', "has database '1/2', not a number"],
  ])('refuses %s: %s', (url, reason) => {
    const error = (() => {
      try {
        parseRedisUrl(url);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(QueueUrlError);
    expect((error as QueueUrlError).reason).toBe(reason);
    expect((error as QueueUrlError).code).toBe('QUEUE_URL');
  });

  it('never shows the password in messages', () => {
    expect(parseRedisUrl('redis://:hunter2@127.0.0.1:6379').display).not.toContain('hunter2');
  });
});

describe('an unreachable Redis', () => {
  it('is one RedisUnavailableError naming the address and the cause, not a hang', async () => {
    const port = await closedPort();
    const error = await checkRedis(parseRedisUrl(`redis://127.0.0.1:${port}`), 2000).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect((error as RedisUnavailableError).code).toBe('REDIS_UNAVAILABLE');
    expect((error as RedisUnavailableError).url).toBe(`redis://127.0.0.1:${port}/0`);
    expect((error as RedisUnavailableError).reason).toContain('ECONNREFUSED');
  });

  it('stops CohortQueue.open and startCohortWorker the same way', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    await expect(CohortQueue.open(url, { connectTimeoutMs: 2000 })).rejects.toThrow(RedisUnavailableError);
    await expect(startCohortWorker(url, { connectTimeoutMs: 2000 })).rejects.toThrow(RedisUnavailableError);
  });

  it('gives up on an unroutable address within the time allowed', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737), routed nowhere: the connection fails at once or times out.
    const error = await checkRedis(parseRedisUrl('redis://192.0.2.1:6379'), 500).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
  });
});

describe('describePersistence', () => {
  it.each([
    [{ appendOnly: true, snapshots: true }, 'append-only file'],
    [{ appendOnly: false, snapshots: true }, 'snapshots only'],
    [{ appendOnly: false, snapshots: false }, 'persistence: none'],
  ])('%o', (settings, expected) => {
    expect(describePersistence({ version: '7', maxmemoryPolicy: 'noeviction', ...settings })).toContain(expected);
  });
});
