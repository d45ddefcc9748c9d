import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ArtifactsModule } from '../artifacts/artifacts.module.js';
import { KilnConfig } from '../config/config.js';
import { GenerationModule } from '../generation/generation.module.js';
import { RedisService } from '../redis/redis.service.js';
import { JobEvents } from './job-events.service.js';
import { JobLifecycle } from './job-lifecycle.service.js';
import { JobQueue, QUEUE_NAMES } from './job-queue.service.js';
import { JobReconciler } from './job-reconciler.service.js';
import { Job } from './job.entity.js';
import { JobRepository } from './job.repository.js';
import { JobsService } from './jobs.service.js';

@Module({
  imports: [
    TypeOrmModule.forFeature([Job]),
    BullModule.forRootAsync({
      inject: [RedisService, KilnConfig],
      useFactory: (redis: RedisService, config: KilnConfig) => ({
        connection: redis.client,
        prefix: config.redis.prefix,
      }),
    }),
    BullModule.registerQueue(...Object.values(QUEUE_NAMES).map((name) => ({ name }))),
    ArtifactsModule,
    GenerationModule,
  ],
  providers: [JobRepository, JobsService, JobLifecycle, JobQueue, JobEvents, JobReconciler],
  exports: [JobRepository, JobsService, JobLifecycle, JobQueue, JobEvents, JobReconciler],
})
export class JobsModule {}
