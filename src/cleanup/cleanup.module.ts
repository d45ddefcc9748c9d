import { type DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { CleanupController } from './cleanup.controller.js';
import { CleanupScheduler } from './cleanup.scheduler.js';
import { CleanupService } from './cleanup.service.js';

@Module({})
export class CleanupModule {
  /** Scheduled in every role (the locks pick one replica); the admin route where the API runs. */
  static forRoot({ api, jobs }: { api: boolean; jobs: DynamicModule }): DynamicModule {
    return {
      module: CleanupModule,
      imports: [ScheduleModule.forRoot(), jobs],
      controllers: api ? [CleanupController] : [],
      providers: [CleanupService, CleanupScheduler],
    };
  }
}
