import { Injectable } from '@nestjs/common';
import { Sql } from '../database/sql.service.js';
import { JobsService } from '../jobs/jobs.service.js';
import type { MetricsSummary } from './metrics-summary.dto.js';
import { RouteLatency } from '../metrics/route-latency.service.js';

const QUANTILES = [0.5, 0.95, 0.99] as const;
const HOUR_MS = 3_600_000;

interface KindRow {
  kind: string;
  submitted: number;
  completed: number;
  failed: number;
  cancelled: number;
  wait: number[] | null;
  run: number[] | null;
}

const toPercentiles = (values: readonly (number | null)[] | null) =>
  values && values.every((value) => value !== null)
    ? { p50: values[0]!, p95: values[1]!, p99: values[2]! }
    : null;

/** The admin's view of the last hours: exact job percentiles from PostgreSQL, route latencies. */
@Injectable()
export class MetricsSummaryService {
  constructor(
    private readonly sql: Sql,
    private readonly latency: RouteLatency,
    private readonly jobs: JobsService,
  ) {}

  async summary(hours: number): Promise<MetricsSummary> {
    // The same whole hours the route sketches are kept by.
    const since = new Date((Math.floor(Date.now() / HOUR_MS) - hours + 1) * HOUR_MS);
    const [kinds, routes, queue] = await Promise.all([
      this.kinds(since),
      this.latency.read(hours),
      this.jobs.stats(),
    ]);
    return {
      hours,
      since: since.toISOString(),
      jobs: kinds.map(({ wait, run, ...row }) => ({
        ...row,
        successRate:
          row.completed + row.failed > 0 ? row.completed / (row.completed + row.failed) : null,
        waitSeconds: toPercentiles(wait),
        runSeconds: toPercentiles(run),
      })),
      routes: [...routes]
        .map(([key, sketch]) => {
          const [method = '', route = ''] = key.split(' ');
          return {
            method,
            route,
            requests: sketch.count,
            latencyMs: toPercentiles(QUANTILES.map((q) => sketch.quantile(q))),
          };
        })
        .sort((a, b) => a.route.localeCompare(b.route) || a.method.localeCompare(b.method)),
      queue,
    };
  }

  /** percentile_cont interpolates between the two nearest samples: exact, not an average of averages. */
  private kinds(since: Date): Promise<KindRow[]> {
    return this.sql.query<KindRow>(
      `SELECT kind,
         count(*)::int AS submitted,
         count(*) FILTER (WHERE status = 'completed')::int AS completed,
         count(*) FILTER (WHERE status = 'failed')::int AS failed,
         count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
         percentile_cont($2::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at))
           FILTER (WHERE started_at IS NOT NULL) AS wait,
         percentile_cont($2::float8[]) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
           FILTER (WHERE status = 'completed') AS run
       FROM jobs WHERE created_at >= $1
       GROUP BY kind ORDER BY kind`,
      [since, QUANTILES],
    );
  }
}
