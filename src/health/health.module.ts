import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';
import { DiskHealth } from './disk.health.js';
import { GpuModule } from '../gpu/gpu.module.js';
import { GpuHealth } from './gpu.health.js';
import { HealthController } from './health.controller.js';
import { ProcessHealth } from './process.health.js';
import { GeneratorsHealth } from './generators.health.js';
import { QueueHealth } from './queue.health.js';
import { Readiness } from './readiness.service.js';

@Module({})
export class HealthModule {
  /** Served in every role: API and worker pods alike get probed. */
  static forRoot({ jobs }: { jobs: DynamicModule }): DynamicModule {
    return {
      module: HealthModule,
      imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), GpuModule, jobs],
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
    };
  }
}
