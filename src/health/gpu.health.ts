import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { KilnConfig } from '../config/config.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { ScrapeCollectors } from '../metrics/scrape-collectors.service.js';
import { GpuMonitor } from '../gpu/gpu-monitor.service.js';
import type { GpuStatus } from '../gpu/nvidia-smi.js';

/**
 * The GPU as the background poller last saw it (never a probe of its own). A GPU that is absent
 * where none is required only degrades; a faulty one (ECC errors, a failing or hanging
 * nvidia-smi) is down.
 */
@Injectable()
export class GpuHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly monitor: GpuMonitor,
    private readonly config: KilnConfig,
    metrics: KilnMetrics,
    collectors: ScrapeCollectors,
  ) {
    collectors.register(() => {
      const status = this.monitor.status;
      for (const gauge of [metrics.gpuMemoryUsed, metrics.gpuMemoryTotal, metrics.gpuUtilization])
        gauge.reset();
      if (status.state !== 'ok' && status.state !== 'ecc_errors') return;
      for (const gpu of status.gpus) {
        const labels = { gpu: String(gpu.index) };
        if (gpu.memoryUsedBytes !== null) metrics.gpuMemoryUsed.set(labels, gpu.memoryUsedBytes);
        if (gpu.memoryTotalBytes !== null) metrics.gpuMemoryTotal.set(labels, gpu.memoryTotalBytes);
        if (gpu.utilizationRatio !== null) metrics.gpuUtilization.set(labels, gpu.utilizationRatio);
      }
    });
  }

  check() {
    const indicator = this.indicators.check('gpu');
    const status: GpuStatus = this.monitor.status;
    const data = {
      message: status.message,
      details: {
        state: status.state,
        required: this.config.gpu.required,
        checkedAt: status.checkedAt,
        ...('gpus' in status ? { gpus: status.gpus } : {}),
      },
    };
    switch (status.state) {
      case 'ok':
        return indicator.up(data);
      case 'pending':
      case 'missing':
      case 'no_gpu':
        return this.config.gpu.required ? indicator.down(data) : indicator.degraded(data);
      case 'ecc_errors':
      case 'failed':
      case 'timeout':
      case 'unparseable':
        return indicator.down(data);
    }
  }
}
