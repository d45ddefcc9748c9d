import { z } from 'zod';

const check = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: 'HealthCheck' });

export const healthReportSchema = z
  .object({
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    version: z.string(),
    uptime_seconds: z.number(),
    timestamp: z.iso.datetime(),
    checks: z.object({
      database: check,
      redis: check.optional().meta({ description: 'Absent where PostgreSQL carries the queues.' }),
      gpu: check,
      queue: check,
      disk_space: check,
      generators: check.meta({
        description: 'Degraded while a kind cannot run here; details per kind.',
      }),
    }),
  })
  .meta({ id: 'HealthReport', description: 'Every check, for people and dashboards.' });
export type HealthReport = z.output<typeof healthReportSchema>;
export type HealthCheckView = z.output<typeof check>;
