import { type DynamicModule, Module } from '@nestjs/common';
import { MetricsSummaryController } from './metrics-summary.controller.js';
import { MetricsSummaryService } from './metrics-summary.service.js';

/** Admin views over what the other rooms hold: the metrics summary reads jobs and latencies. */
@Module({})
export class AdminModule {
  /** `jobs` is the application's own JobsModule, so both share one set of job services. */
  static forRoot(jobs: DynamicModule): DynamicModule {
    return {
      module: AdminModule,
      imports: [jobs],
      controllers: [MetricsSummaryController],
      providers: [MetricsSummaryService],
    };
  }
}
