import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';
import { DiskHealth } from './disk.health.js';
import { GenerationModule } from '../generation/generation.module.js';
import { GpuModule } from '../gpu/gpu.module.js';
import { JobsModule } from '../jobs/jobs.module.js';
import { GpuHealth } from './gpu.health.js';
import { HealthController } from './health.controller.js';
import { ProcessHealth } from './process.health.js';
import { GeneratorsHealth } from './generators.health.js';
import { QueueHealth } from './queue.health.js';
import { Readiness } from './readiness.service.js';

/** The probes keep their route in every role: API and worker pods alike get probed. */
@Module({
  imports: [
    TerminusModule.forRoot({ errorLogStyle: 'json' }),
    GpuModule,
    GenerationModule,
    JobsModule,
  ],
  controllers: [HealthController],
  providers: [
    Readiness,
    ProcessHealth,
    DependenciesHealth,
    DiskHealth,
    GpuHealth,
    QueueHealth,
    GeneratorsHealth,
  ],
  exports: [Readiness],
})
export class HealthModule {}
