import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { oneLineTail } from '../common/one-line-tail.js';
import { NonRetryableError } from './generator.js';

/** How much of stderr is kept: the end is what explains a failure. */
const STDERR_KEPT_CHARS = 8_192;
const STDERR_MESSAGE_CHARS = 1_000;
/** The longest stdout line passed on; a longer one (binary output, say) is read and skipped. */
export const MAX_LINE_BYTES = 4_096;
const NEWLINE = 0x0a;

export interface RunOptions {
  args?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  /** Aborting kills the whole process group: SIGTERM, then SIGKILL after `killGraceMs`. */
  signal: AbortSignal;
  killGraceMs?: number;
  /** Each line of stdout up to MAX_LINE_BYTES, without its line break. */
  onStdoutLine?: (line: string) => void;
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of stderr, at most STDERR_KEPT_CHARS. */
  stderr: string;
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
      stderr = (stderr + chunk).slice(-STDERR_KEPT_CHARS);
    });
    readLines(child.stdout, (line) => options.onStdoutLine?.(line));
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
      resolve({ code, signal: exitSignal, stderr });
    });
  });
}

/**
 * Calls `onLine` with each line of `stream` (a final one without a line break too), reading it to
 * the end but never holding more than MAX_LINE_BYTES of a line: a longer one is skipped.
 */
function readLines(stream: Readable, onLine: (line: string) => void): void {
  let parts: Buffer[] = [];
  let bytes = 0;
  const take = (part: Buffer) => {
    bytes += part.length;
    if (bytes > MAX_LINE_BYTES) parts = [];
    else parts.push(part);
  };
  const endLine = () => {
    if (bytes <= MAX_LINE_BYTES) onLine(Buffer.concat(parts).toString('utf8').replace(/\r$/, ''));
    parts = [];
    bytes = 0;
  };
  stream.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      take(chunk.subarray(start, end));
      endLine();
      start = end + 1;
    }
    take(chunk.subarray(start));
  });
  stream.on('end', () => bytes > 0 && endLine());
}

/** `'x' exited with code 1: <stderr's tail>`, for a failed run. */
export function exitError(path: string, result: ProcessResult): Error {
  const how =
    result.code === null ? `was killed by ${result.signal}` : `exited with code ${result.code}`;
  const said = oneLineTail(result.stderr, STDERR_MESSAGE_CHARS);
  return new Error(`'${path}' ${how}${said ? `: ${said}` : ''}`);
}
