import { z } from 'zod';

const count = z.int().min(0);

export const cleanupReportSchema = z
  .object({
    queueBackend: z
      .enum(['redis', 'postgres'])
      .meta({ description: 'Where the queue entries and rate-limit counters were kept.' }),
    removed: z
      .object({
        jobs: count,
        artifacts: count,
        temp_files: count,
        queue_entries: count,
        rate_limit_counters: count,
      })
      .meta({ description: 'What this run removed, per target.' }),
    reconciled: z
      .object({ enqueued: count, failed: count })
      .nullable()
      .meta({ description: 'The reconciler pass; null when another replica was running it.' }),
    skipped: z
      .array(z.enum(['jobs', 'temp', 'queue', 'rate-limits', 'reconcile']))
      .meta({ description: 'Tasks another replica held the lock of: it does the work.' }),
  })
  .meta({ id: 'CleanupReport' });
