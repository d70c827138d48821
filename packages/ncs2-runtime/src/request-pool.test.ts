import { describe, expect, it } from 'vitest';
import { RequestPool } from './request-pool.js';

describe('RequestPool', () => {
  it('keeps at most `size` tasks in flight, gives each a distinct request and runs every task', async () => {
    const pool = new RequestPool(['a', 'b']);
    let inFlight = 0;
    let peak = 0;
    const held = new Set<string>();
    const results = await Promise.all(
      Array.from({ length: 7 }, (_, index) =>
        pool.use(async (request) => {
          expect(held.has(request)).toBe(false);
          held.add(request);
          inFlight += 1;
          peak = Math.max(peak, inFlight);
          await new Promise((resolve) => setTimeout(resolve, 2));
          inFlight -= 1;
          held.delete(request);
          return index * 10;
        }),
      ),
    );
    expect(results).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(peak).toBe(2);
    expect(pool.size).toBe(2);
  });

  it('frees the request when a task fails', async () => {
    const pool = new RequestPool(['only']);
    await expect(pool.use(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(pool.use(async (request) => request)).resolves.toBe('only');
  });

  it('needs a request', () => {
    expect(() => new RequestPool([])).toThrow(RangeError);
  });
});
