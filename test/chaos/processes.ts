import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENV_KEYS } from '../../src/config/config.js';
import { freePort } from '../support/ports.js';

const MAIN = resolve('dist/src/main.js');
const BOOT_TIMEOUT_MS = 60_000;
/** A crashed process is started again after this long, as an orchestrator would, this often at most. */
const RESTART_DELAY_MS = 1_000;
const MAX_RESTARTS = 30;

export interface Exit {
  pid: number;
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether the suite caused it (a kill or a stop), or the process ended by itself. */
  caused: boolean;
}

/** Every Kiln process made, so that however the suite ends none is left behind or restarted. */
const made = new Set<KilnProcess>();

export function killAllKilnProcesses(): void {
  for (const kiln of made) kiln.signal('SIGKILL');
}

/**
 * One Kiln process (`node dist/src/main.js` in a role), its output appended to a log file per
 * start. A process that ends without the suite asking is counted as a crash and started again.
 */
export class KilnProcess {
  readonly exits: Exit[] = [];
  crashes = 0;
  private child?: ChildProcess;
  private starts = 0;
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;

  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly logDir: string,
  ) {}

  static async create(
    name: string,
    role: 'api' | 'worker',
    env: Record<string, string>,
    logDir: string,
  ): Promise<KilnProcess> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
    const port = await freePort();
    const kiln = new KilnProcess(
      name,
      port,
      { ...env, KILN_ROLE: role, PORT: String(port) },
      logDir,
    );
    made.add(kiln);
    return kiln;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && !this.child.signalCode;
  }

  /**
   * Starts the process and waits until it is ready: liveness answers from the first moment, while
   * the process still waits for its dependencies.
   */
  async start(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.stopping = false;
    this.starts++;
    const log = join(this.logDir, `${this.name}.${this.starts}.log`);
    const fd = openSync(log, 'a');
    // Started in its log folder, so no `.env` of the checkout reaches it.
    const child = spawn(process.execPath, [MAIN], {
      cwd: this.logDir,
      env: { ...inheritedEnv(), ...this.env },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.child = child;
    child.once('exit', (code, signal) => {
      const caused = this.stopping;
      this.exits.push({ pid: child.pid!, at: Date.now(), code, signal, caused });
      if (!caused) this.crashed();
    });
    const deadline = Date.now() + BOOT_TIMEOUT_MS;
    while (!(await this.answers())) {
      if (child.exitCode !== null || child.signalCode)
        throw new Error(`${this.name} exited while starting; see ${log}:\n${tail(log)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not start; see ${log}`);
      await sleep(200);
    }
  }

  /** Sends a signal the suite means (kill -9, SIGTERM): not a crash. */
  signal(signal: NodeJS.Signals): void {
    clearTimeout(this.restartTimer);
    this.stopping = true;
    this.child?.kill(signal);
  }

  /** Resolves with the exit once the process has ended, or undefined after `timeoutMs`. */
  async exited(timeoutMs: number): Promise<Exit | undefined> {
    const child = this.child;
    if (!child) return undefined;
    if (child.exitCode === null && !child.signalCode) {
      const timeout = AbortSignal.timeout(timeoutMs);
      await once(child, 'exit', { signal: timeout }).catch(() => undefined);
    }
    return this.alive ? undefined : this.exits.at(-1);
  }

  /** SIGTERM, and SIGKILL if it has not ended after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    clearTimeout(this.restartTimer);
    if (!this.alive) {
      this.stopping = true;
      return;
    }
    this.signal('SIGTERM');
    if (!(await this.exited(graceMs))) {
      this.signal('SIGKILL');
      await this.exited(5_000);
    }
  }

  private crashed(): void {
    this.crashes++;
    if (this.crashes > MAX_RESTARTS) return;
    this.restartTimer = setTimeout(() => {
      this.start().catch(() => undefined);
    }, RESTART_DELAY_MS);
  }

  private async answers(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/health/ready`, {
        signal: AbortSignal.timeout(2_000),
      });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  }
}

/** The suite's environment without any of Kiln's keys: a scenario sets every one it means. */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !ENV_KEYS.includes(key)));
}

function tail(path: string, lines = 20): string {
  return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
}

/** One API process and two workers: the system a scenario attacks. */
export class Fleet {
  private constructor(
    readonly api: KilnProcess,
    readonly workers: KilnProcess[],
  ) {}

  static async start(env: Record<string, string>, logDir: string): Promise<Fleet> {
    const api = await KilnProcess.create('api', 'api', env, logDir);
    const workers = await Promise.all(
      ['worker-1', 'worker-2'].map((name) => KilnProcess.create(name, 'worker', env, logDir)),
    );
    // Side by side: migrations run under an advisory lock.
    const fleet = [api, ...workers];
    const started = await Promise.allSettled(fleet.map((kiln) => kiln.start()));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure) {
      for (const kiln of fleet) kiln.signal('SIGKILL');
      throw failure.reason;
    }
    return new Fleet(api, workers);
  }

  get all(): KilnProcess[] {
    return [this.api, ...this.workers];
  }

  /** Every worker exit so far, whatever caused it: its commands must not outlive it. */
  workerExits(): Exit[] {
    return this.workers.flatMap((worker) => worker.exits);
  }

  get crashes(): number {
    return this.all.reduce((sum, kiln) => sum + kiln.crashes, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((kiln) => kiln.stop()));
  }
}
