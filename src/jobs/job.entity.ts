import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { JobStep } from '../generation/job-steps.js';

export const JOB_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const FINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/** A job's priority: higher runs first. */
export const PRIORITY = { min: 1, max: 10, default: 5 } as const;

/** A job's row is its truth; its BullMQ job carries only the id. */
@Entity('jobs')
export class Job {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column('text')
  kind!: string;

  @Column('text')
  status!: JobStatus;

  @Column('text', { name: 'current_step' })
  currentStep!: JobStep;

  @Column('real')
  progress!: number;

  @Column('jsonb')
  input!: Record<string, unknown>;

  /** sha256 of the canonical JSON of kind, generator version and input. */
  @Column('text', { name: 'input_hash' })
  inputHash!: string;

  @Column('text', { name: 'generator_version' })
  generatorVersion!: string;

  @Column('smallint')
  priority!: number;

  /** How many times a worker has started this job; also fences writes from stale attempts. */
  @Column('int')
  attempts!: number;

  @Column('int', { name: 'max_attempts' })
  maxAttempts!: number;

  @Column('text', { nullable: true })
  error!: string | null;

  @Column('text', { name: 'artifact_sha256', nullable: true })
  artifactSha256!: string | null;

  @Column('text', { name: 'owner_id' })
  ownerId!: string;

  @Column('text', { name: 'idempotency_key', nullable: true })
  idempotencyKey!: string | null;

  @Column('uuid', { name: 'batch_id', nullable: true })
  batchId!: string | null;

  /** Until when the running attempt holds the job; renewed while it runs (see JobLifecycle). */
  @Column('timestamptz', { name: 'lease_expires_at', nullable: true })
  leaseExpiresAt!: Date | null;

  @Column('timestamptz', { name: 'cancel_requested_at', nullable: true })
  cancelRequestedAt!: Date | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'started_at', nullable: true })
  startedAt!: Date | null;

  @Column('timestamptz', { name: 'finished_at', nullable: true })
  finishedAt!: Date | null;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;
}

/**
 * Every job's first state. The submit INSERT writes it, so the job a submission answers with is
 * this plus what the database adds (its timestamps), without reading the row back.
 */
export const INITIAL_JOB_STATE = {
  status: 'pending',
  currentStep: 'queued',
  progress: 0,
  attempts: 0,
  error: null,
  artifactSha256: null,
  leaseExpiresAt: null,
  cancelRequestedAt: null,
  startedAt: null,
  finishedAt: null,
} as const satisfies Partial<Job>;
