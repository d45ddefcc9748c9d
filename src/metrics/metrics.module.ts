import { type DynamicModule, Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { HttpMetrics } from './http-metrics.service.js';
import { KilnMetrics, METRIC_PROVIDERS } from './kiln-metrics.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsSummaryController } from './metrics-summary.controller.js';
import { MetricsSummaryService } from './metrics-summary.service.js';
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

@Global()
@Module({})
export class MetricsModule {
  /** `/metrics` in every role; the admin summary where this process serves the API. */
  static forRoot({ api, jobs }: { api: boolean; jobs: DynamicModule }): DynamicModule {
    return {
      module: MetricsModule,
      imports: [prometheus, ...(api ? [jobs] : [])],
      controllers: api ? [MetricsSummaryController] : [],
      providers: [
        ...METRIC_PROVIDERS,
        KilnMetrics,
        ScrapeCollectors,
        RouteLatency,
        HttpMetrics,
        ...(api ? [MetricsSummaryService] : []),
      ],
      exports: [KilnMetrics, ScrapeCollectors],
    };
  }
}
