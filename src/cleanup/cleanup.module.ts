import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ArtifactsModule } from '../artifacts/artifacts.module.js';
import { JobsModule } from '../jobs/jobs.module.js';
import { RateLimitModule } from '../rate-limit/rate-limit.module.js';
import { CleanupScheduler } from './cleanup.scheduler.js';
import { CleanupService } from './cleanup.service.js';

/** Scheduled in every role: the locks pick one replica. */
@Module({
  imports: [ScheduleModule.forRoot(), JobsModule, ArtifactsModule, RateLimitModule],
  providers: [CleanupService, CleanupScheduler],
  exports: [CleanupService],
})
export class CleanupModule {}
