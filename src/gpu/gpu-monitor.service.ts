import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { KilnConfig } from '../config/config.js';
import { type GpuCheck, type GpuStatus, queryNvidiaSmi } from './nvidia-smi.js';

/**
 * Keeps the latest nvidia-smi reading, so that health checks answer from memory instead of
 * waiting on a tool that can hang for seconds when the driver is in trouble.
 */
@Injectable()
export class GpuMonitor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Gpu');
  private latest: GpuStatus = {
    state: 'pending',
    message: 'nvidia-smi has not been run yet',
    checkedAt: null,
  };
  private inFlight?: Promise<GpuCheck>;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly config: KilnConfig) {}

  get status(): GpuStatus {
    return this.latest;
  }

  onApplicationBootstrap(): void {
    this.pollAndReschedule();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }

  /** Runs nvidia-smi now; a call while a run is in flight shares that run. */
  poll(): Promise<GpuCheck> {
    this.inFlight ??= this.check().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async check(): Promise<GpuCheck> {
    const { nvidiaSmiPath, pollTimeoutMs } = this.config.gpu;
    const status = await queryNvidiaSmi(nvidiaSmiPath, pollTimeoutMs);
    if (status.state !== this.latest.state) {
      // No GPU on a host that needs none is normal, not a warning.
      const expected =
        status.state === 'ok' ||
        (!this.config.gpu.required && (status.state === 'missing' || status.state === 'no_gpu'));
      if (expected) this.logger.log(`GPU ${status.state}: ${status.message}`);
      else this.logger.warn(`GPU ${status.state}: ${status.message}`);
    }
    this.latest = status;
    return status;
  }

  /** The next poll starts an interval after the last one ended: never two at once. */
  private pollAndReschedule(): void {
    void this.poll()
      .catch((error: Error) => this.logger.error(`GPU poll failed: ${error.message}`))
      .finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(() => this.pollAndReschedule(), this.config.gpu.pollIntervalMs);
        this.timer.unref();
      });
  }
}
