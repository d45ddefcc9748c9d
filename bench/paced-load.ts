import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PacedLoad {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Requests per second, sent at evenly spaced moments. */
  rate: number;
  seconds: number;
  /**
   * Sent first at the same rate and not counted: a fresh client's connections opening and its
   * code compiling are not the server's latency.
   */
  warmupSeconds: number;
  /** The most requests in flight at once; more wait for a free connection. */
  connections: number;
}

export interface PacedResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/**
 * POSTs at a fixed offered rate: one request every 1/rate seconds, whatever the server does (an
 * open loop). autocannon's `overallRate` is not that: each connection sends its share of a second
 * as fast as the server answers and then waits for the next second, so "1,000 req/s" is a burst at
 * full speed for part of every second and its latency is that of a saturated server. Latency here
 * counts from the moment a request was due, so a server that falls behind is charged for the wait.
 */
export async function pacedLoad(load: PacedLoad): Promise<PacedResult> {
  const { hostname, port, pathname } = new URL(load.url);
  const agent = new Agent({ keepAlive: true, maxSockets: load.connections });
  const headers = { ...load.headers, 'content-length': String(Buffer.byteLength(load.body)) };
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let lastAnswer = 0;

  const send = (due: number, counted: boolean) =>
    new Promise<void>((resolve) => {
      const outgoing = request(
        { agent, hostname, port, path: pathname, method: 'POST', headers },
        (response) => {
          const status = response.statusCode ?? 0;
          if (status < 200 || status >= 300) non2xx++;
          response.resume();
          response.on('end', () => {
            if (counted) {
              lastAnswer = performance.now();
              latencies.push(lastAnswer - due);
            }
            resolve();
          });
        },
      );
      outgoing.on('error', () => {
        errors++;
        resolve();
      });
      outgoing.end(load.body);
    });

  const warmup = Math.round(load.rate * load.warmupSeconds);
  const total = warmup + Math.round(load.rate * load.seconds);
  const interval = 1000 / load.rate;
  const start = performance.now();
  const measuredFrom = start + warmup * interval;
  const answers: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    // Everything due by now goes out, so a late timer does not lower the rate.
    while (sent < total && start + sent * interval <= performance.now()) {
      answers.push(send(start + sent * interval, sent >= warmup));
      sent++;
    }
    await sleep(Math.max(0, start + sent * interval - performance.now()));
  }
  await Promise.all(answers);
  agent.destroy();

  latencies.sort((a, b) => a - b);
  const quantile = (q: number) =>
    Math.round(
      10 * (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN),
    ) / 10;
  return {
    requestsPerSecond: Math.round(latencies.length / ((lastAnswer - measuredFrom) / 1000)),
    p50Ms: quantile(0.5),
    p99Ms: quantile(0.99),
    non2xx,
    errors,
  };
}
