import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { oneLineTail } from '../common/one-line-tail.js';
import type { ProcessExit, StartError, SupervisorMessage } from './command-supervisor.js';
import { killGroup, recordGroup } from './process-groups.js';
import { NonRetryableError } from '../common/non-retryable-error.js';

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
  /**
   * Aborting, or this process dying, kills the whole process group: SIGTERM, then SIGKILL after
   * `killGraceMs`.
   */
  signal: AbortSignal;
  killGraceMs?: number;
  /** Where to record the group while it runs, for killOrphanedGroups (see process-groups.ts). */
  recordDir?: string;
  /** Each line of stdout up to MAX_LINE_BYTES, without its line break. */
  onStdoutLine?: (line: string) => void;
}

export interface ProcessResult extends ProcessExit {
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

/** The compiled supervisor beside this module; run from the sources (vitest), the build's. */
const here = fileURLToPath(import.meta.url);
const SUPERVISOR = here.endsWith('.ts')
  ? resolve(dirname(here), '../../dist/src/process/command-supervisor.js')
  : join(dirname(here), 'command-supervisor.js');

/**
 * Runs an executable in a process group of its own, under a supervisor (command-supervisor.ts)
 * that kills the group when this process dies, so that nothing it starts outlives Kiln. Resolves
 * once it has exited, with its stderr's tail; rejects with the signal's reason when aborted, once
 * the group is killed.
 */
export function runProcess(path: string, options: RunOptions): Promise<ProcessResult> {
  const { signal, killGraceMs = 5_000 } = options;
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const supervisor = spawn(
      process.execPath,
      [SUPERVISOR, String(killGraceMs), path, ...(options.args ?? [])],
      {
        cwd: options.cwd,
        env: options.env,
        // Apart from Kiln's group, as the command is: a terminal's Ctrl-C stops Kiln, which stops it.
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    supervisor.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEPT_CHARS);
    });
    readLines(supervisor.stdout, (line) => options.onStdoutLine?.(line));
    // A child that does not read its input closes the pipe early: not an error of ours.
    supervisor.stdin.on('error', () => undefined);
    supervisor.stdin.end(options.stdin ?? '');

    const lifeline = supervisor.stdio[3] as Socket;
    lifeline.on('error', () => undefined);
    let pid: number | undefined;
    let exit: ProcessExit | undefined;
    let notStarted: StartError | undefined;
    let recorded: Promise<string | undefined> = Promise.resolve(undefined);
    readLines(lifeline, (line) => {
      const message = JSON.parse(line) as SupervisorMessage;
      if ('pid' in message) {
        pid = message.pid;
        // Best effort: the supervisor is the first safety net, the record only the second.
        if (options.recordDir)
          recorded = recordGroup(options.recordDir, pid).catch(() => undefined);
      } else if ('exit' in message) exit = message.exit;
      else notStarted = message.error;
    });

    // Closing the lifeline is how the supervisor is told to kill the group.
    const onAbort = () => lifeline.end();
    signal.addEventListener('abort', onAbort, { once: true });

    const fail = (code: string | undefined, message: string) => {
      const problem = code === 'ENOENT' ? 'was not found' : `did not start: ${message}`;
      reject(new NotStartedError(path, code, `'${path}' ${problem}`));
    };
    supervisor.once('error', (error: NodeJS.ErrnoException) => {
      signal.removeEventListener('abort', onAbort);
      fail(error.code, error.message);
    });
    supervisor.once('close', (code, exitSignal) => {
      signal.removeEventListener('abort', onAbort);
      // A supervisor killed before its command ended says nothing: the group goes here instead.
      if (!exit && pid !== undefined) killGroup(pid, 'SIGKILL');
      void recorded
        .then((file) => (file ? rm(file, { force: true }) : undefined))
        .finally(() => {
          if (signal.aborted) return reject(signal.reason as Error);
          if (notStarted) return fail(notStarted.code, notStarted.message);
          resolve({ ...(exit ?? { code, signal: exitSignal }), stderr });
        });
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
