import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JobView } from '../../src/jobs/job.dto.js';
import {
  type Accepted,
  type Answer,
  type KilnClient,
  type Submitter,
  eachLimited,
  isFinal,
} from './client.js';
import {
  type Attempt,
  expectedSha256,
  orphans,
  overlaps,
  readAttempts,
  restartDelays,
} from './ledger.js';
import type { Exit } from './processes.js';

/** One row of the report: what a scenario's jobs became, and each invariant it broke. */
export interface ScenarioResult {
  name: string;
  fault: string;
  accepted: number;
  completed: number;
  /** Ended `failed` (or `cancelled`, which nobody asked for): a fault became a failure. */
  failed: number;
  /** Not final when the drain time ran out: lost or stuck. */
  unfinished: number;
  overlaps: number;
  orphans: number;
  badArtifacts: number;
  answers: Record<Answer, number>;
  /** Jobs whose command ran more than once (informative: a retry after a kill is expected). */
  reruns: number;
  /** Kiln processes that ended by themselves (started again after a second). */
  crashes: number;
  /** From the fault's end until a job submitted then completed; null if none did. */
  recoveryMs: number | null;
  /** The 95th percentile of the time from a worker's death to its jobs' next attempts. */
  restartP95Ms: number | null;
  durationMs: number;
  violations: string[];
  pass: boolean;
}

const SHOWN = 5;

/** Polls every accepted job until each is final or `timeoutMs` has passed. */
export async function drain(
  client: KilnClient,
  accepted: readonly Accepted[],
  timeoutMs: number,
): Promise<Map<string, JobView>> {
  const last = new Map<string, JobView>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = accepted.filter(({ id }) => {
      const job = last.get(id);
      return !job || !isFinal(job);
    });
    await eachLimited(open, 16, async ({ id }) => {
      const job = await client.job(id);
      if (job) last.set(id, job);
    });
    const still = open.filter(({ id }) => !isFinal(last.get(id) ?? ({} as JobView)));
    if (still.length === 0 || Date.now() > deadline) return last;
    await sleep(500);
  }
}

export interface Observed {
  name: string;
  fault: string;
  client: KilnClient;
  submitter: Submitter;
  jobs: Map<string, JobView>;
  ledger: string;
  workerExits: readonly Exit[];
  /** Ledger pids found alive a few seconds after their worker ended. */
  aliveAfterWorker: ReadonlySet<number>;
  crashes: number;
  recoveryMs: number | null;
  startedAt: number;
  /** What the scenario itself saw go wrong (a shutdown past its grace, a probe never accepted). */
  violations: string[];
}

/** Checks every invariant on what a scenario observed. */
export async function check(observed: Observed): Promise<ScenarioResult> {
  const { submitter, jobs } = observed;
  const violations = [...observed.violations];
  const say = (what: string, items: string[]) => {
    if (items.length === 0) return;
    const more = items.length > SHOWN ? ` (and ${items.length - SHOWN} more)` : '';
    violations.push(`${what}: ${items.slice(0, SHOWN).join('; ')}${more}`);
  };
  const views = submitter.accepted.map(({ id }) => jobs.get(id));

  const unfinished = submitter.accepted.filter(
    (_, index) => !isFinal(views[index] ?? ({} as JobView)),
  );
  say(
    `${unfinished.length} accepted job(s) not final after the drain`,
    unfinished.map(
      ({ id }) => `${id} ${jobs.get(id)?.status ?? 'unreadable'}/${jobs.get(id)?.step ?? ''}`,
    ),
  );
  const failed = views.filter(
    (job) => job && (job.status === 'failed' || job.status === 'cancelled'),
  );
  say(
    `${failed.length} accepted job(s) failed or cancelled by a fault`,
    failed.map(
      (job) => `${job!.id} ${job!.status} after ${job!.attempts} attempt(s): ${job!.error}`,
    ),
  );

  const attempts = readAttempts(observed.ledger);
  const pairs = overlaps(attempts);
  say(
    `${pairs.length} pair(s) of attempts of one job overlapping`,
    pairs.map(([a, b]) => `${a.job}: ${span(a)} and ${span(b)}`),
  );
  const outlived = new Map<number, Attempt>();
  for (const attempt of orphans(attempts, observed.workerExits)) outlived.set(attempt.pid, attempt);
  for (const attempt of attempts)
    if (observed.aliveAfterWorker.has(attempt.pid)) outlived.set(attempt.pid, attempt);
  say(
    `${outlived.size} command(s) alive after their worker died`,
    [...outlived.values()].map((attempt) => `${attempt.job}: ${span(attempt)}`),
  );

  const bad = await badArtifacts(observed.client, submitter.accepted, jobs);
  say(`${bad.length} completed job(s) without their artifact`, bad);

  const { answers } = submitter;
  if (answers['5xx'] + answers.other + answers.hang > 0)
    say(
      `submissions answered ${answers['5xx']} 5xx, ${answers.other} other, ${answers.hang} hang`,
      submitter.badAnswers,
    );

  const runs = new Map<string, number>();
  for (const { job } of attempts) runs.set(job, (runs.get(job) ?? 0) + 1);
  return {
    name: observed.name,
    fault: observed.fault,
    accepted: submitter.accepted.length,
    completed: views.filter((job) => job?.status === 'completed').length,
    failed: failed.length,
    unfinished: unfinished.length,
    overlaps: pairs.length,
    orphans: outlived.size,
    badArtifacts: bad.length,
    answers: { ...answers },
    reruns: [...runs.values()].filter((count) => count > 1).length,
    crashes: observed.crashes,
    recoveryMs: observed.recoveryMs,
    restartP95Ms: percentile(restartDelays(attempts, observed.workerExits), 0.95),
    durationMs: Date.now() - observed.startedAt,
    violations,
    pass: violations.length === 0,
  };
}

/** The nearest-rank percentile; null for no values. */
function percentile(values: number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

function span(attempt: Attempt): string {
  const end = attempt.ended ? 'end' : 'last beat';
  return `pid ${attempt.pid} of worker ${attempt.worker} from ${iso(attempt.start)} to ${end} ${iso(attempt.last)}`;
}

const iso = (t: number) => new Date(t).toISOString().slice(11, 23);

/** Downloads every completed job's artifact and compares it with what its input must give. */
async function badArtifacts(
  client: KilnClient,
  accepted: readonly Accepted[],
  jobs: Map<string, JobView>,
): Promise<string[]> {
  const bad: string[] = [];
  const completed = accepted.filter(({ id }) => jobs.get(id)?.status === 'completed');
  await eachLimited(completed, 8, async ({ id, input }) => {
    try {
      const { status, etag, body } = await client.result(id);
      const sha256 = createHash('sha256').update(body).digest('hex');
      const expected = expectedSha256(input);
      if (status !== 200) bad.push(`${id}: download answered ${status}`);
      else if (sha256 !== expected) bad.push(`${id}: sha256 ${sha256}, expected ${expected}`);
      else if (etag !== `"${expected}"`) bad.push(`${id}: ETag ${etag}, expected "${expected}"`);
    } catch (error) {
      bad.push(`${id}: download failed: ${(error as Error).message}`);
    }
  });
  return bad;
}

const COLUMNS: [string, (result: ScenarioResult) => string][] = [
  ['scenario', (r) => r.name],
  ['accepted', (r) => String(r.accepted)],
  ['completed', (r) => String(r.completed)],
  ['failed', (r) => String(r.failed)],
  ['unfinished', (r) => String(r.unfinished)],
  ['overlaps', (r) => String(r.overlaps)],
  ['orphans', (r) => String(r.orphans)],
  ['bad artifacts', (r) => String(r.badArtifacts)],
  [
    '202/503/5xx/other/hang/refused',
    (r) =>
      [
        r.answers['202'],
        r.answers['503'],
        r.answers['5xx'],
        r.answers.other,
        r.answers.hang,
        r.answers.refused,
      ].join('/'),
  ],
  ['reruns', (r) => String(r.reruns)],
  ['crashes', (r) => String(r.crashes)],
  ['recovery', (r) => (r.recoveryMs === null ? 'none' : seconds(r.recoveryMs))],
  ['restart p95', (r) => (r.restartP95Ms === null ? '-' : seconds(r.restartP95Ms))],
  ['duration', (r) => seconds(r.durationMs)],
  ['result', (r) => (r.pass ? 'PASS' : 'FAIL')],
];

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The results as a Markdown table (it reads as well in a terminal as in the README). */
export function table(results: readonly ScenarioResult[]): string {
  const rows = [
    COLUMNS.map(([title]) => title),
    ...results.map((r) => COLUMNS.map(([, cell]) => cell(r))),
  ];
  const widths = COLUMNS.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(rows[0]!),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.slice(1).map(line),
  ].join('\n');
}

export interface Report {
  form: string;
  startedAt: string;
  durationMs: number;
  commit: string;
  runDir: string;
  passed: number;
  failed: number;
  scenarios: ScenarioResult[];
}

export function writeReport(path: string, report: Report): void {
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
