import { setTimeout as sleep } from 'node:timers/promises';
import type { JobView } from '../../src/jobs/job.dto.js';
import { CHAOS_ADMIN_KEY, CHAOS_KIND, CLIENT_TIMEOUT_MS } from './settings.js';

/**
 * How a submission was answered. `503` counts only with a Retry-After; `5xx` is any other server
 * error, `other` any other status, `hang` no answer within CLIENT_TIMEOUT_MS, `refused` a
 * connection refused or cut (no process listening).
 */
export const ANSWERS = ['202', '503', '5xx', 'other', 'hang', 'refused'] as const;
export type Answer = (typeof ANSWERS)[number];

export interface LedgerInput {
  tag: string;
  durationMs: number;
  repeat: number;
}

export interface Accepted {
  id: string;
  input: LedgerInput;
  at: number;
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);
export const isFinal = (job: JobView) => FINAL.has(job.status);

/** Kiln's HTTP API as a client meets it: the admin key, a timeout on every request. */
export class KilnClient {
  constructor(private readonly baseUrl: string) {}

  private fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.baseUrl}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${CHAOS_ADMIN_KEY}`, ...init.headers },
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
  }

  async submit(
    input: LedgerInput,
    priority?: number,
  ): Promise<{ answer: Answer; job?: JobView; detail?: string }> {
    try {
      const response = await this.fetch('/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: CHAOS_KIND, input, priority }),
      });
      const text = await response.text();
      const { status } = response;
      if (status === 202) return { answer: '202', job: JSON.parse(text) as JobView };
      const detail = `${status} ${problemSummary(text)}`;
      if (status === 503 && response.headers.has('retry-after')) return { answer: '503' };
      if (status === 503) return { answer: '5xx', detail: `503 without Retry-After: ${detail}` };
      return { answer: status >= 500 ? '5xx' : 'other', detail };
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError')
        return { answer: 'hang', detail: `no answer in ${CLIENT_TIMEOUT_MS} ms` };
      return { answer: 'refused', detail: describe(error) };
    }
  }

  /** The job's view, or undefined while it cannot be read (an outage). */
  async job(id: string): Promise<JobView | undefined> {
    try {
      const response = await this.fetch(`/jobs/${id}`);
      const text = await response.text();
      return response.ok ? (JSON.parse(text) as JobView) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Downloads a completed job's artifact. */
  async result(id: string): Promise<{ status: number; etag: string | null; body: Buffer }> {
    const response = await this.fetch(`/jobs/${id}/result`);
    const body = Buffer.from(await response.arrayBuffer());
    return { status: response.status, etag: response.headers.get('etag'), body };
  }
}

/** A problem document's type and request id (the log has the rest), or the body's start. */
function problemSummary(text: string): string {
  try {
    const problem = JSON.parse(text) as { type?: string; requestId?: string };
    return `${problem.type ?? ''} (request ${problem.requestId ?? '?'})`;
  } catch {
    return text.slice(0, 200);
  }
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

/** Runs `task` over `items` with at most `width` at once. */
export async function eachLimited<T>(
  items: readonly T[],
  width: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

/**
 * Submits paced jobs and keeps every answer: the accepted jobs (the ones Kiln promised to run) and
 * a count per answer class, with the first few bad answers for the report.
 */
export class Submitter {
  readonly accepted: Accepted[] = [];
  readonly answers: Record<Answer, number> = {
    '202': 0,
    '503': 0,
    '5xx': 0,
    other: 0,
    hang: 0,
    refused: 0,
  };
  readonly badAnswers: string[] = [];

  constructor(private readonly client: KilnClient) {}

  async submit(input: LedgerInput, priority?: number): Promise<Accepted | undefined> {
    const { answer, job, detail } = await this.client.submit(input, priority);
    this.answers[answer]++;
    if (
      (answer === '5xx' || answer === 'other' || answer === 'hang') &&
      this.badAnswers.length < 10
    )
      this.badAnswers.push(`${answer}: ${detail ?? ''}`);
    if (!job) return undefined;
    const accepted = { id: job.id, input, at: Date.now() };
    this.accepted.push(accepted);
    return accepted;
  }

  /** `count` submissions at `perSecond`, evenly spaced, each answered or timed out before it returns. */
  async paced(count: number, perSecond: number, input: (index: number) => LedgerInput) {
    const start = Date.now();
    const inFlight: Promise<unknown>[] = [];
    for (let index = 0; index < count; index++) {
      const due = start + (index * 1000) / perSecond;
      if (due > Date.now()) await sleep(due - Date.now());
      inFlight.push(this.submit(input(index)));
    }
    await Promise.all(inFlight);
  }
}
