import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { AdminModule } from './admin/admin.module.js';
import { AuthModule } from './auth/auth.module.js';
import { CleanupModule } from './cleanup/cleanup.module.js';
import { DependencyOutagesModule } from './common/dependency-outages.service.js';
import { HttpDrain } from './http/http-drain.service.js';
import { ConfigModule } from './config/config.module.js';
import type { KilnConfig } from './config/config.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { JobsModule } from './jobs/jobs.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';
import { RedisModule } from './redis/redis.module.js';
import { WorkerModule } from './worker/worker.module.js';

export interface AppOptions {
  /** Extra generators (benchmarks and tests register their own). */
  generators?: Provider[];
}

@Module({})
export class AppModule {
  /** One codebase, a role per process: `api` serves HTTP, `worker` runs generators, `all` both. */
  static forRoot(config: KilnConfig, { generators = [] }: AppOptions = {}): DynamicModule {
    const jobs = JobsModule.forRoot({ api: config.runsApi });
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DependencyOutagesModule,
        DatabaseModule,
        RedisModule,
        AuthModule,
        RateLimitModule,
        jobs,
        MetricsModule,
        ...(config.runsApi ? [AdminModule.forRoot(jobs)] : []),
        HealthModule.forRoot({ jobs }),
        CleanupModule.forRoot({ api: config.runsApi, jobs }),
        ...(config.runsWorker ? [WorkerModule.forRoot(jobs)] : []),
      ],
      providers: [HttpDrain, ...generators],
    };
  }
}
