import { Injectable } from '@nestjs/common';
import { GpuMonitor } from '../gpu/gpu-monitor.service.js';

/**
 * Spreads this worker's GPU jobs over the host's GPUs: each job is given the least busy healthy
 * GPU, so with one job per GPU (the default GPU_CONCURRENCY) no two models share one GPU's memory.
 */
@Injectable()
export class GpuSlots {
  /** Jobs running per GPU UUID. */
  private readonly busy = new Map<string, number>();

  constructor(private readonly gpu: GpuMonitor) {}

  /** The UUID of the GPU a job should use, or undefined when nvidia-smi lists none usable. */
  acquire(): string | undefined {
    const status = this.gpu.status;
    if (!('gpus' in status)) return undefined;
    const healthy = status.gpus.filter((gpu) => (gpu.eccUncorrectedErrors ?? 0) === 0);
    let chosen: string | undefined;
    for (const { uuid } of healthy) {
      if (chosen === undefined || this.load(uuid) < this.load(chosen)) chosen = uuid;
    }
    if (chosen !== undefined) this.busy.set(chosen, this.load(chosen) + 1);
    return chosen;
  }

  release(uuid: string): void {
    const left = this.load(uuid) - 1;
    if (left > 0) this.busy.set(uuid, left);
    else this.busy.delete(uuid);
  }

  private load(uuid: string): number {
    return this.busy.get(uuid) ?? 0;
  }
}
