import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ArtifactsModule } from '../artifacts/artifacts.module.js';
import { GenerationModule } from '../generation/generation.module.js';
import { JobEvents } from './job-events.service.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobQueue } from './job-queue.service.js';
import { JobReconciler } from './job-reconciler.service.js';
import { Job } from './job.entity.js';
import { JobRepository } from './job.repository.js';
import { JobsService } from './jobs.service.js';

@Module({
  imports: [TypeOrmModule.forFeature([Job]), ArtifactsModule, GenerationModule],
  providers: [JobRepository, JobsService, JobLifecycle, JobQueue, JobEvents, JobReconciler],
  exports: [JobRepository, JobsService, JobLifecycle, JobQueue, JobEvents, JobReconciler],
})
export class JobsModule {}
