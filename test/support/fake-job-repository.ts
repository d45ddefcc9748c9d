import type { OwnerScope } from '../../src/auth/principal.js';
import type { JobStep } from '../../src/generation/job-steps.js';
import { FINAL_STATUSES, Job } from '../../src/jobs/job.entity.js';
import type { ClaimState, JobRepository } from '../../src/jobs/job.repository.js';

type Statements = Pick<
  JobRepository,
  | 'insert'
  | 'findOne'
  | 'claim'
  | 'claimState'
  | 'renewLease'
  | 'progress'
  | 'complete'
  | 'requeue'
  | 'fail'
  | 'cancelIfPending'
  | 'requestCancel'
  | 'cancelled'
>;

type Condition = (row: Job, now: Date) => boolean;

/** A row read back shares nothing with the stored one, as a row from PostgreSQL would. */
const copy = (job: Job): Job => Object.assign(new Job(), structuredClone(job));
const later = (now: Date, ms: number) => new Date(now.getTime() + ms);

/** What each statement that ends a job sets, beside its own columns. */
const ended = (status: 'completed' | 'failed' | 'cancelled', now: Date) => ({
  status,
  currentStep: status,
  finishedAt: now,
  updatedAt: now,
});
const unfinished = (row: Job) => !FINAL_STATUSES.includes(row.status);
const ownedBy = (scope: OwnerScope, row: Job) => scope.all || row.ownerId === scope.ownerId;
const leaseLapsed: Condition = (row, now) =>
  row.leaseExpiresAt === null || row.leaseExpiresAt < now;
/** The fence of an attempt's writes: the job still runs, as that attempt. */
const runningAttempt =
  (job: Job): Condition =>
  (row) =>
    row.status === 'processing' && row.attempts === job.attempts;

/**
 * JobRepository's statements on a table in memory, with the same conditions: each change answers
 * the new row, or null when its condition did not hold. Its clock stands for PostgreSQL's, which
 * decides leases; `elapse` moves it on, so a lease lapses without waiting for it.
 */
export class FakeJobRepository implements Statements {
  private readonly rows = new Map<string, Job>();
  private clockOffsetMs = 0;

  elapse(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** Leaves out a job whose Idempotency-Key its owner used before, as the unique index does. */
  insert(jobs: Job[]): Promise<Job[]> {
    const now = this.now();
    const inserted: Job[] = [];
    for (const job of jobs) {
      if (this.keyUsed(job)) continue;
      Object.assign(job, { createdAt: now, updatedAt: now });
      this.rows.set(job.id, copy(job));
      inserted.push(job);
    }
    return Promise.resolve(inserted);
  }

  findOne(id: string, scope: OwnerScope): Promise<Job | null> {
    const row = this.rows.get(id);
    return Promise.resolve(row && ownedBy(scope, row) ? copy(row) : null);
  }

  claim(id: string, leaseMs: number): Promise<Job | null> {
    return this.change(
      id,
      (row, now) =>
        row.status === 'pending' ||
        (row.status === 'processing' && row.attempts < row.maxAttempts && leaseLapsed(row, now)),
      (row, now) => ({
        status: 'processing',
        currentStep: 'preparing',
        progress: 0,
        attempts: row.attempts + 1,
        leaseExpiresAt: later(now, leaseMs),
        startedAt: row.startedAt ?? now,
        updatedAt: now,
      }),
    );
  }

  claimState(id: string): Promise<ClaimState | null> {
    const row = this.rows.get(id);
    if (!row) return Promise.resolve(null);
    const { status, attempts, maxAttempts, leaseExpiresAt } = row;
    const leaseMs =
      leaseExpiresAt === null ? null : leaseExpiresAt.getTime() - this.now().getTime();
    return Promise.resolve({ status, attempts, maxAttempts, leaseMs });
  }

  async renewLease(job: Job, leaseMs: number): Promise<{ cancelRequestedAt: Date | null } | null> {
    const row = await this.change(job.id, runningAttempt(job), (_row, now) => ({
      leaseExpiresAt: later(now, leaseMs),
    }));
    return row && { cancelRequestedAt: row.cancelRequestedAt };
  }

  progress(job: Job, step: JobStep, progress: number): Promise<Job | null> {
    return this.change(job.id, runningAttempt(job), (_row, now) => ({
      currentStep: step,
      progress,
      updatedAt: now,
    }));
  }

  complete(job: Job, artifactSha256: string): Promise<Job | null> {
    return this.change(job.id, runningAttempt(job), (_row, now) => ({
      ...ended('completed', now),
      progress: 1,
      artifactSha256,
      error: null,
      leaseExpiresAt: null,
    }));
  }

  requeue(job: Job, { error, countAttempt }: { error?: string; countAttempt: boolean }) {
    return this.change(job.id, runningAttempt(job), (row, now) => ({
      status: 'pending',
      currentStep: 'queued',
      progress: 0,
      error: error ?? row.error,
      attempts: countAttempt ? row.attempts : row.attempts - 1,
      leaseExpiresAt: null,
      updatedAt: now,
    }));
  }

  fail(id: string, error: string, attempt?: number): Promise<Job | null> {
    return this.change(
      id,
      (row) => unfinished(row) && (attempt === undefined || row.attempts === attempt),
      (_row, now) => ({ ...ended('failed', now), error, leaseExpiresAt: null }),
    );
  }

  cancelIfPending(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.change(
      id,
      (row) => ownedBy(scope, row) && row.status === 'pending',
      (_row, now) => ended('cancelled', now),
    );
  }

  requestCancel(id: string, scope: OwnerScope): Promise<Job | null> {
    return this.change(
      id,
      (row) => ownedBy(scope, row) && row.status === 'processing',
      (row, now) => ({ cancelRequestedAt: row.cancelRequestedAt ?? now, updatedAt: now }),
    );
  }

  cancelled(id: string): Promise<Job | null> {
    return this.change(id, unfinished, (_row, now) => ({
      ...ended('cancelled', now),
      leaseExpiresAt: null,
    }));
  }

  private keyUsed({ ownerId, idempotencyKey }: Job): boolean {
    if (idempotencyKey === null) return false;
    const rows = [...this.rows.values()];
    return rows.some((row) => row.ownerId === ownerId && row.idempotencyKey === idempotencyKey);
  }

  private now(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  /** One conditional UPDATE … RETURNING on one row. */
  private change(
    id: string,
    where: Condition,
    set: (row: Job, now: Date) => Partial<Job>,
  ): Promise<Job | null> {
    const row = this.rows.get(id);
    const now = this.now();
    if (!row || !where(row, now)) return Promise.resolve(null);
    Object.assign(row, set(row, now));
    return Promise.resolve(copy(row));
  }
}
