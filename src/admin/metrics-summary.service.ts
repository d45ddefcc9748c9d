import { Injectable } from '@nestjs/common';
import { JobRepository } from '../jobs/job.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import type { MetricsSummary } from './metrics-summary.dto.js';
import { RouteLatency } from '../metrics/route-latency.service.js';

const QUANTILES = [0.5, 0.95, 0.99] as const;
const HOUR_MS = 3_600_000;

const toPercentiles = (values: readonly (number | null)[] | null) =>
  values && values.every((value) => value !== null)
    ? { p50: values[0]!, p95: values[1]!, p99: values[2]! }
    : null;

/** The admin's view of the last hours: exact job percentiles from PostgreSQL, route latencies. */
@Injectable()
export class MetricsSummaryService {
  constructor(
    private readonly jobs: JobRepository,
    private readonly latency: RouteLatency,
    private readonly jobsService: JobsService,
  ) {}

  async summary(hours: number): Promise<MetricsSummary> {
    // The same whole hours the route sketches are kept by.
    const since = new Date((Math.floor(Date.now() / HOUR_MS) - hours + 1) * HOUR_MS);
    const [kinds, routes, queue] = await Promise.all([
      this.jobs.totalsByKind(since, QUANTILES),
      this.latency.read(hours),
      this.jobsService.stats(),
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
}
