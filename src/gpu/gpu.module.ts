import { Module } from '@nestjs/common';
import { GpuMonitor } from './gpu-monitor.service.js';

/** One nvidia-smi poller per process, read by health, metrics and generator availability. */
@Module({ providers: [GpuMonitor], exports: [GpuMonitor] })
export class GpuModule {}
