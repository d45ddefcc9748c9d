import { Module } from '@nestjs/common';
import { JobsModule } from '../jobs/jobs.module.js';
import { MetricsSummaryService } from './metrics-summary.service.js';

/** Admin views over what the other rooms hold: the metrics summary reads jobs and latencies. */
@Module({
  imports: [JobsModule],
  providers: [MetricsSummaryService],
  exports: [MetricsSummaryService],
})
export class AdminModule {}
