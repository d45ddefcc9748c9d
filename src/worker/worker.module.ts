import { Module } from '@nestjs/common';
import { ArtifactsModule } from '../artifacts/artifacts.module.js';
import { GenerationModule } from '../generation/generation.module.js';
import { GpuModule } from '../gpu/gpu.module.js';
import { JobsModule } from '../jobs/jobs.module.js';
import { DatabaseOutage } from './database-outage.js';
import { GpuSlots } from './gpu-slots.js';
import { JobRunner } from './job-runner.service.js';
import { WorkerPool } from './worker-pool.service.js';

/** The worker role: the BullMQ workers and what runs their jobs. */
@Module({
  imports: [JobsModule, GenerationModule, ArtifactsModule, GpuModule],
  providers: [DatabaseOutage, GpuSlots, JobRunner, WorkerPool],
})
export class WorkerModule {}
