import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { LedgerInput } from './client.js';
import type { Exit } from './processes.js';
import { ORPHAN_GRACE_MS } from './settings.js';

/** How often the ledger script beats (test/fixtures/commands/ledger.mjs). */
const BEAT_MS = 200;

/** One line of the ledger test/fixtures/commands/ledger.mjs appends to. */
interface LedgerEvent {
  event: 'start' | 'beat' | 'end';
  job: string;
  pid: number;
  /** The pid of the worker that started the command. */
  worker: number;
  t: number;
}

/** One run of the command for a job: from its start to its end, or to its last heartbeat. */
export interface Attempt {
  job: string;
  pid: number;
  worker: number;
  start: number;
  last: number;
  ended: boolean;
}

/** The content the ledger script writes for an input, and so the artifact's sha256. */
export function expectedSha256(input: LedgerInput): string {
  const content = `${input.tag} ${input.durationMs}\n`.repeat(input.repeat);
  return createHash('sha256').update(content).digest('hex');
}

/** Every attempt in a ledger; a line cut short by a kill is skipped. */
export function readAttempts(path: string): Attempt[] {
  if (!existsSync(path)) return [];
  const attempts = new Map<string, Attempt>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    let event: LedgerEvent;
    try {
      event = JSON.parse(line) as LedgerEvent;
    } catch {
      continue;
    }
    const key = `${event.job}/${event.pid}`;
    const attempt = attempts.get(key) ?? {
      job: event.job,
      pid: event.pid,
      worker: event.worker,
      start: event.t,
      last: event.t,
      ended: false,
    };
    attempt.start = Math.min(attempt.start, event.t);
    attempt.last = Math.max(attempt.last, event.t);
    attempt.ended ||= event.event === 'end';
    attempts.set(key, attempt);
  }
  return [...attempts.values()];
}

/** Pairs of attempts of one job, by different processes, that ran at the same time. */
export function overlaps(attempts: readonly Attempt[]): [Attempt, Attempt][] {
  const byJob = new Map<string, Attempt[]>();
  for (const attempt of attempts)
    byJob.set(attempt.job, [...(byJob.get(attempt.job) ?? []), attempt]);
  const pairs: [Attempt, Attempt][] = [];
  for (const runs of byJob.values()) {
    for (const [index, a] of runs.entries()) {
      for (const b of runs.slice(index + 1)) {
        if (a.pid !== b.pid && a.start < b.last && b.start < a.last) pairs.push([a, b]);
      }
    }
  }
  return pairs;
}

/** Attempts still heartbeating ORPHAN_GRACE_MS after the worker that started them ended. */
export function orphans(attempts: readonly Attempt[], workerExits: readonly Exit[]): Attempt[] {
  return attempts.filter((attempt) =>
    workerExits.some(
      (exit) => exit.pid === attempt.worker && attempt.last > exit.at + ORPHAN_GRACE_MS,
    ),
  );
}

/**
 * For each attempt cut short by its worker's death, how long after that death the job's next
 * attempt started (ms): how fast Kiln notices a dead worker and runs its jobs again.
 */
export function restartDelays(
  attempts: readonly Attempt[],
  workerExits: readonly Exit[],
): number[] {
  const delays: number[] = [];
  for (const attempt of attempts) {
    const death = workerExits.find((exit) => exit.pid === attempt.worker);
    // Running when its worker died: it had started, and beat (or ended) at about that time.
    if (!death || attempt.start > death.at || attempt.last < death.at - BEAT_MS) continue;
    const next = Math.min(
      ...attempts
        .filter((other) => other.job === attempt.job && other.start > death.at)
        .map((other) => other.start),
    );
    if (Number.isFinite(next)) delays.push(next - death.at);
  }
  return delays;
}

/** Whether a pid is a ledger command still running (not another process that reused the pid). */
export function isLedgerCommand(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ledger.mjs');
  } catch {
    return false;
  }
}

/** Kills the ledger commands a scenario left running (orphans of dead workers). */
export function killLeftovers(attempts: readonly Attempt[]): number {
  let killed = 0;
  for (const { pid } of attempts) {
    if (!isLedgerCommand(pid)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // It has just ended.
    }
  }
  return killed;
}
