import { type DynamicModule, Module } from '@nestjs/common';
import { GpuModule } from '../gpu/gpu.module.js';
import { DatabaseOutage } from './database-outage.js';
import { GpuSlots } from './gpu-slots.js';
import { JobRunner } from './job-runner.service.js';
import { WorkerPool } from './worker-pool.service.js';

@Module({})
export class WorkerModule {
  /** `jobs` is the application's own JobsModule, so both share one set of job services. */
  static forRoot(jobs: DynamicModule): DynamicModule {
    return {
      module: WorkerModule,
      imports: [jobs, GpuModule],
      providers: [DatabaseOutage, GpuSlots, JobRunner, WorkerPool],
    };
  }
}
