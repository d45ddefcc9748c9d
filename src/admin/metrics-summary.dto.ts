import { z } from 'zod';
import { queueStatsSchema } from '../jobs/job.dto.js';
import { MAX_SUMMARY_HOURS } from '../metrics/latency-store.js';

export const summaryQuerySchema = z
  .object({
    hours: z.coerce
      .number()
      .int()
      .min(1)
      .max(MAX_SUMMARY_HOURS)
      .default(24)
      .meta({ description: 'The window: the last N whole hours, the current one included.' }),
  })
  .strict();

const percentiles = z
  .object({ p50: z.number(), p95: z.number(), p99: z.number() })
  .nullable()
  .meta({ id: 'Percentiles' });

export const metricsSummarySchema = z
  .object({
    hours: z.int(),
    since: z.iso.datetime(),
    jobs: z
      .array(
        z.object({
          kind: z.string(),
          submitted: z.int(),
          completed: z.int(),
          failed: z.int(),
          cancelled: z.int(),
          successRate: z
            .number()
            .nullable()
            .meta({ description: 'completed / (completed + failed); null before any finished.' }),
          waitSeconds: percentiles.meta({ description: 'Submission to first start.' }),
          runSeconds: percentiles.meta({
            description: 'First start to completion, completed jobs.',
          }),
        }),
      )
      .meta({ description: 'Jobs submitted in the window, by kind; exact percentiles.' }),
    routes: z
      .array(
        z.object({
          method: z.string(),
          route: z.string(),
          requests: z.int(),
          latencyMs: percentiles.meta({ description: 'Within 1 % of the exact value.' }),
        }),
      )
      .meta({ description: 'Requests of every replica in the window, by route template.' }),
    queue: queueStatsSchema,
  })
  .meta({ id: 'MetricsSummary' });
export type MetricsSummary = z.output<typeof metricsSummarySchema>;
