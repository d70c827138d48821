/**
 * A pool of inference requests for runtimes whose JavaScript binding has no async infer queue (openvino-node has
 * none, unlike the Python API): each run waits for a free request, so as many inferences are in flight as the
 * device's optimal number of requests, and no more.
 */
export class RequestPool<Request> {
  private readonly free: Request[];
  private readonly waiting: ((request: Request) => void)[] = [];
  /** Number of requests in the pool. */
  readonly size: number;

  /** @param requests the requests to share; at least one. */
  constructor(requests: readonly Request[]) {
    if (requests.length === 0) throw new RangeError('RequestPool needs at least one request');
    this.free = [...requests];
    this.size = requests.length;
  }

  /** Runs `task` with a free request (waiting for one in FIFO order) and frees it when the task settles. */
  async use<T>(task: (request: Request) => Promise<T>): Promise<T> {
    const request = this.free.pop() ?? (await new Promise<Request>((resolve) => this.waiting.push(resolve)));
    try {
      return await task(request);
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next(request);
      else this.free.push(request);
    }
  }
}
