import { z } from 'zod';
import { JOB_STEPS } from '../generation/job-steps.js';
import { JOB_STATUSES, type Job, PRIORITY } from './job.entity.js';

export const submitJobSchema = z
  .strictObject({
    kind: z
      .string()
      .meta({ description: 'A generator kind from GET /generators.', example: 'music' }),
    input: z
      .record(z.string(), z.unknown())
      .meta({ description: "The generator's input; its schema depends on `kind`." }),
    priority: z
      .int()
      .min(PRIORITY.min)
      .max(PRIORITY.max)
      .default(PRIORITY.default)
      .meta({ description: 'Higher runs first within its queue.' }),
  })
  .meta({
    id: 'SubmitJob',
    example: { kind: 'music', input: { prompt: 'calm ambient piano with strings', duration: 8 } },
  });
export type SubmitJob = z.output<typeof submitJobSchema>;

export const submitBatchSchema = z
  .strictObject({ jobs: z.array(z.unknown()).min(1) })
  .meta({ id: 'SubmitBatch', description: 'Each item is a SubmitJob; all are accepted or none.' });

export const jobViewSchema = z
  .object({
    id: z.uuid(),
    kind: z.string(),
    status: z.enum(JOB_STATUSES),
    step: z.enum(JOB_STEPS),
    progress: z.number().min(0).max(1),
    priority: z.int(),
    attempts: z.int().meta({ description: 'How many times a worker has started the job.' }),
    maxAttempts: z.int(),
    input: z.record(z.string(), z.unknown()),
    error: z.string().nullable(),
    batchId: z.uuid().nullable(),
    cancelRequested: z.boolean().meta({ description: 'A cancel was asked for while it ran.' }),
    createdAt: z.iso.datetime(),
    startedAt: z.iso.datetime().nullable(),
    finishedAt: z.iso.datetime().nullable(),
    updatedAt: z.iso.datetime(),
    links: z.object({
      self: z.string(),
      events: z.string(),
      result: z.string().nullable().meta({ description: 'Set once the job has completed.' }),
    }),
  })
  .meta({ id: 'Job' });
export type JobView = z.output<typeof jobViewSchema>;

export const jobPageSchema = z
  .object({
    items: z.array(jobViewSchema),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page.' }),
  })
  .meta({ id: 'JobPage' });

export const batchViewSchema = z
  .object({ batchId: z.uuid(), jobs: z.array(jobViewSchema) })
  .meta({ id: 'Batch' });

export const listJobsQuerySchema = z.strictObject({
  status: z.enum(JOB_STATUSES).optional(),
  kind: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});
export type ListJobsQuery = z.output<typeof listJobsQuerySchema>;

export const jobIdSchema = z.uuid({ message: 'Must be a UUID.' });

export const queueStatsSchema = z
  .object({
    pending: z.int(),
    processing: z.int(),
    completed: z.int(),
    failed: z.int(),
    cancelled: z.int(),
    oldestPendingAgeSeconds: z.number().nullable(),
    meanProcessingSeconds: z
      .number()
      .nullable()
      .meta({ description: 'Mean run time of jobs completed in the last 24 hours.' }),
    backend: z
      .enum(['redis', 'postgres'])
      .meta({ description: 'What carries the queues: Redis, or PostgreSQL alone.' }),
    queues: z.record(z.string(), z.record(z.string(), z.int())).meta({
      description: 'BullMQ counts per queue (waiting, active, delayed, prioritized, failed).',
    }),
  })
  .meta({ id: 'QueueStats' });
export type QueueStats = z.output<typeof queueStatsSchema>;

export const API_PREFIX = '/api/v1';

export function toJobView(job: Job): JobView {
  const self = `${API_PREFIX}/jobs/${job.id}`;
  return {
    id: job.id,
    kind: job.kind,
    status: job.status,
    step: job.currentStep,
    progress: job.progress,
    priority: job.priority,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    input: job.input,
    error: job.error,
    batchId: job.batchId,
    cancelRequested: job.cancelRequestedAt !== null,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    updatedAt: job.updatedAt.toISOString(),
    links: {
      self,
      events: `${self}/events`,
      result: job.status === 'completed' ? `${self}/result` : null,
    },
  };
}
