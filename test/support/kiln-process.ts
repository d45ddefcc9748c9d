import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';
import { ADMIN_KEY, TEST_ENV } from './kiln.js';

/** A log line as Kiln writes it, with the fields tests look at. */
export interface LogLine {
  level: string;
  msg: string;
  context?: string;
  dependency?: string;
  outage?: string;
  [field: string]: unknown;
}

/** `node dist/src/main.js` in a process of its own: the boot path as production runs it. */
export class KilnProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    // 'close', not 'exit': only then has its output been read to the end.
    this.exited = once(child, 'close').then(([code]) => code as number | null);
  }

  /** Spawns Kiln on a free port and returns once its port answers liveness. */
  static async start(env: Record<string, string>): Promise<KilnProcess> {
    const main = 'dist/src/main.js';
    if (!existsSync(main))
      throw new Error(`${main} is missing: run \`npm run build\` first (npm test does)`);
    const port = await freePort();
    const child = spawn(process.execPath, [main], {
      env: { ...process.env, ...TEST_ENV, HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const kiln = new KilnProcess(child, `http://127.0.0.1:${port}`);
    await kiln.until('/health/live', 200, 30_000);
    return kiln;
  }

  /** Polls `path` until it answers `status`. */
  async until(path: string, status: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const response = await fetch(`${this.url}${path}`).catch(() => undefined);
      await response?.arrayBuffer();
      if (response?.status === status) return;
      if (Date.now() > deadline || this.child.exitCode !== null)
        throw new Error(`${path} did not answer ${status}:\n${this.stdout}\n${this.stderr}`);
      await sleep(50);
    }
  }

  /** An API request with the admin key; the time it took comes back with the answer. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    const started = performance.now();
    const response = await fetch(`${this.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_KEY}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      body: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
      ms: performance.now() - started,
    };
  }

  /** Every line of standard output, each of which must be JSON. */
  lines(): LogLine[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        try {
          return JSON.parse(line) as LogLine;
        } catch {
          throw new Error(`Not a JSON log line: ${line}`);
        }
      });
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }

  /** `kill -9`: no shutdown at all, as the OOM killer ends a process. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}
