import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_ENV } from './kiln.js';

/** Whether a process is gone: no longer listed, or a zombie no one has reaped yet. */
export function gone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

/** Waits until the process is gone; returns how long that took, in milliseconds. */
export async function waitUntilGone(pid: number, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!gone(pid)) {
    if (Date.now() - started > timeoutMs) throw new Error(`process ${pid} is still running`);
    await sleep(20);
  }
  return Date.now() - started;
}

/** The contents of a file a process writes, once it is there. */
export async function fileWritten(path: string): Promise<string> {
  for (let tries = 0; !existsSync(path) || readFileSync(path, 'utf8') === ''; tries++) {
    if (tries > 400) throw new Error(`${path} was never written`);
    await sleep(25);
  }
  return readFileSync(path, 'utf8');
}

/**
 * A worker in a process of its own, started from the build with the test environment and `env`,
 * once it processes the CPU queue: a test can `kill -9` it, as an OOM kill or a lost node would.
 */
export async function startWorkerProcess(env: Record<string, string> = {}): Promise<ChildProcess> {
  const main = 'dist/src/main.js';
  if (!existsSync(main))
    throw new Error(`${main} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [main], {
    env: {
      ...process.env,
      ...TEST_ENV,
      KILN_ROLE: 'worker',
      PORT: '0',
      LOG_LEVEL: 'log',
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 20_000;
  while (!output.includes('Processing generation-cpu')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`The worker did not start:\n${output}`);
    }
    await sleep(50);
  }
  return child;
}

/** `kill -9`, and wait until it is gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}
