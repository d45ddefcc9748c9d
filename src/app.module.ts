import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AdminModule } from './admin/admin.module.js';
import { MetricsSummaryController } from './admin/metrics-summary.controller.js';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { AuthModule } from './auth/auth.module.js';
import { BackplaneModule } from './backplane/backplane.module.js';
import { CleanupController } from './cleanup/cleanup.controller.js';
import { CleanupModule } from './cleanup/cleanup.module.js';
import { DependencyOutagesModule } from './common/dependency-outages.service.js';
import { ConfigModule } from './config/config.module.js';
import type { KilnConfig } from './config/config.js';
import { DatabaseModule } from './database/database.module.js';
import { GenerationModule } from './generation/generation.module.js';
import { GeneratorsController } from './generation/generators.controller.js';
import { SpeechController } from './generation/generators/speech/speech.controller.js';
import { HealthModule } from './health/health.module.js';
import { HttpDrain } from './http/http-drain.service.js';
import { JobsController } from './jobs/jobs.controller.js';
import { JobsModule } from './jobs/jobs.module.js';
import { QueueController } from './jobs/queue.controller.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitGuard } from './rate-limit/rate-limit.guard.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';
import { WorkerModule } from './worker/worker.module.js';

export interface AppOptions {
  /** Extra generators (benchmarks and tests register their own). */
  generators?: Provider[];
}

/** The API role: the routes under `/api/v1`. Health and `/metrics` are served in every role. */
@Module({
  imports: [JobsModule, GenerationModule, AdminModule, CleanupModule],
  controllers: [
    JobsController,
    QueueController,
    GeneratorsController,
    SpeechController,
    MetricsSummaryController,
    CleanupController,
  ],
})
export class ApiModule {}

/** Global guards run in this order: the caller's key first, so that limits follow the key. */
const GUARDS: Provider[] = [
  { provide: APP_GUARD, useClass: ApiKeyGuard },
  { provide: APP_GUARD, useClass: RateLimitGuard },
];

@Module({})
export class AppModule {
  /** One codebase, a role per process: `api` serves HTTP, `worker` runs generators, `all` both. */
  static forRoot(config: KilnConfig, { generators = [] }: AppOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DependencyOutagesModule,
        DatabaseModule,
        BackplaneModule.forRoot(config),
        MetricsModule,
        AuthModule,
        RateLimitModule,
        JobsModule,
        HealthModule,
        CleanupModule,
        ...(config.runsApi ? [ApiModule] : []),
        ...(config.runsWorker ? [WorkerModule] : []),
      ],
      providers: [...GUARDS, HttpDrain, ...generators],
    };
  }
}
