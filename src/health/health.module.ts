import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { DependenciesHealth } from './dependencies.health.js';
import { DiskHealth } from './disk.health.js';
import { GpuMonitor } from './gpu/gpu-monitor.service.js';
import { GpuHealth } from './gpu.health.js';
import { HealthController } from './health.controller.js';
import { ProcessHealth } from './process.health.js';
import { QueueHealth } from './queue.health.js';
import { Readiness } from './readiness.service.js';

/** Served in every role: API and worker pods alike get probed. */
@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' })],
  controllers: [HealthController],
  providers: [
    Readiness,
    GpuMonitor,
    ProcessHealth,
    DependenciesHealth,
    DiskHealth,
    GpuHealth,
    QueueHealth,
  ],
  exports: [Readiness],
})
export class HealthModule {}
