import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { redisOrPostgres } from '../redis/redis-or-postgres.js';
import { HttpMetrics } from './http-metrics.service.js';
import { KilnMetrics, METRIC_PROVIDERS } from './kiln-metrics.js';
import { LatencyStore } from './latency-store.js';
import { MetricsController } from './metrics.controller.js';
import { PostgresLatencyStore } from './postgres-latency.store.js';
import { RedisLatencyStore } from './redis-latency.store.js';
import { RouteLatency } from './route-latency.service.js';
import { ScrapeCollectors } from './scrape-collectors.service.js';

/**
 * prom-client keeps one registry per process and refuses to register the default metrics twice,
 * so the module is declared once here and shared by every app the process builds (tests build several).
 */
const prometheus = PrometheusModule.register({
  path: '/metrics',
  controller: MetricsController,
  defaultMetrics: { enabled: true },
});

/** `/metrics` in every role, and the metrics every room records. */
@Global()
@Module({
  imports: [prometheus],
  providers: [
    ...METRIC_PROVIDERS,
    KilnMetrics,
    ScrapeCollectors,
    redisOrPostgres(LatencyStore, {
      redis: (redis) => new RedisLatencyStore(redis),
      postgres: (sql) => new PostgresLatencyStore(sql),
    }),
    RouteLatency,
    HttpMetrics,
  ],
  exports: [KilnMetrics, ScrapeCollectors, RouteLatency],
})
export class MetricsModule {}
