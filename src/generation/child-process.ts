import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { oneLineTail } from '../common/one-line-tail.js';
import { NonRetryableError } from './generator.js';

/** How much of stderr is kept: the end is what explains a failure. */
const STDERR_KEPT_BYTES = 8_192;
const STDERR_MESSAGE_CHARS = 1_000;

export interface RunOptions {
  args?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  /** Aborting kills the whole process group: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal: AbortSignal;
  killGraceMs?: number;
  onStdoutLine?: (line: string) => void;
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines of stderr on one line, for an error message. */
  stderrTail: string;
}

/** Thrown when the executable cannot be started at all: running again will not help. */
export class NotStartedError extends NonRetryableError {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group has ended.
  }
}

/**
 * Runs an executable in a process group of its own, so that whatever it starts can be killed with
 * it. Resolves once it has exited, with its stderr's tail; rejects with the signal's reason when
 * aborted, once the group is killed.
 */
export function runProcess(path: string, options: RunOptions): Promise<ProcessResult> {
  const { signal, killGraceMs = 5_000 } = options;
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const child = spawn(path, options.args ?? [], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEPT_BYTES);
    });
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on('line', (line) => options.onStdoutLine?.(line));
    // A child that does not read its input closes the pipe early: not an error of ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');

    let forceKill: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (child.pid === undefined) return;
      killGroup(child.pid, 'SIGTERM');
      forceKill = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), killGraceMs);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(forceKill);
    };

    child.once('error', (error: NodeJS.ErrnoException) => {
      settle();
      const problem = error.code === 'ENOENT' ? 'was not found' : `did not start: ${error.message}`;
      reject(new NotStartedError(path, error.code, `'${path}' ${problem}`));
    });
    // What the leader leaves running when it exits would be orphaned: it goes with it.
    child.once('exit', () => child.pid !== undefined && killGroup(child.pid, 'SIGKILL'));
    child.once('close', (code, exitSignal) => {
      settle();
      if (signal.aborted) return reject(signal.reason as Error);
      resolve({ code, signal: exitSignal, stderrTail: oneLineTail(stderr, STDERR_MESSAGE_CHARS) });
    });
  });
}

/** `'x' exited with code 1: <stderr's tail>`, for a failed run. */
export function exitError(path: string, result: ProcessResult): Error {
  const how =
    result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
  return new Error(`'${path}' ${how}${result.stderrTail ? `: ${result.stderrTail}` : ''}`);
}
