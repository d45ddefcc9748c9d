import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
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
import { JobsController } from './jobs.controller.js';
import { JobsService } from './jobs.service.js';
import { QueueController } from './queue.controller.js';

@Module({})
export class JobsModule {
  /** Routes only where this process serves the API; the services everywhere. */
  static forRoot({ api }: { api: boolean }): DynamicModule {
    const generation = GenerationModule.forRoot({ api });
    return {
      module: JobsModule,
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
        generation,
      ],
      controllers: api ? [JobsController, QueueController] : [],
      providers: [JobRepository, JobsService, JobLifecycle, JobQueue, JobEvents, JobReconciler],
      exports: [
        JobRepository,
        JobsService,
        JobLifecycle,
        JobQueue,
        JobEvents,
        JobReconciler,
        ArtifactsModule,
        generation,
      ],
    };
  }
}
