import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ProblemError } from '../common/problem.js';
import { KilnConfig } from '../config/config.js';
import { GpuMonitor } from '../gpu/gpu-monitor.service.js';
import type { Availability, Generator } from './generator.js';
import { type CatalogEntry, GeneratorRegistry } from './generator.registry.js';

/** Bound on one generator's check, so a hanging model server cannot stall the others. */
const CHECK_TIMEOUT_MS = 5_000;

const describe = (state: Availability) => (state.available ? 'available' : state.reason);

export type KindAvailability = Availability & { checkedAt: string | null };

/**
 * Whether each kind can run, in one place: what its generator needs (a binary, a model server)
 * and, where this process serves the GPU queue, a working GPU for GPU kinds. Checked at start
 * and on a schedule; the catalog, the health report and the submit path read the last result.
 */
@Injectable()
export class GeneratorAvailability implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Generators');
  private readonly latest = new Map<string, KindAvailability>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly registry: GeneratorRegistry,
    private readonly gpu: GpuMonitor,
    private readonly config: KilnConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.config.generators.checkIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  of(kind: string): KindAvailability {
    return this.latest.get(kind) ?? { available: true, checkedAt: null };
  }

  all(): Record<string, KindAvailability> {
    return Object.fromEntries(this.registry.kinds.map((kind) => [kind, this.of(kind)]));
  }

  catalog(): (CatalogEntry & { availability: KindAvailability })[] {
    return this.registry.catalog().map((entry) => ({
      ...entry,
      availability: this.of(entry.kind),
    }));
  }

  /** A 503 naming the first unavailable kind, so that no job waits for what cannot run. */
  require(kinds: Iterable<string>): void {
    for (const kind of new Set(kinds)) {
      const availability = this.of(kind);
      if (availability.available) continue;
      const retryAfter = Math.ceil(this.config.generators.checkIntervalMs / 1000);
      throw new ProblemError(
        'generator-unavailable',
        `The '${kind}' generator is unavailable: ${availability.reason}`,
        {
          headers: { 'retry-after': String(retryAfter) },
          extensions: { kind, reason: availability.reason },
        },
      );
    }
  }

  /** Checks every kind now; a call while a check runs shares it. */
  refresh(): Promise<void> {
    this.running ??= this.checkAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkAll(): Promise<void> {
    const generators = this.registry.all();
    const results = await Promise.all(generators.map((generator) => this.check(generator)));
    generators.forEach((generator, index) => {
      const result = { ...results[index]!, checkedAt: new Date().toISOString() };
      const before = this.latest.get(generator.kind);
      if (!before || describe(before) !== describe(result)) {
        if (result.available) this.logger.log(`'${generator.kind}' is available`);
        else this.logger.warn(`'${generator.kind}' is unavailable: ${result.reason}`);
      }
      this.latest.set(generator.kind, result);
    });
  }

  private async check(generator: Generator): Promise<Availability> {
    if (generator.resources === 'gpu' && this.servesGpuQueue()) {
      const gpu = this.gpu.status.state === 'pending' ? await this.gpu.poll() : this.gpu.status;
      if (gpu.state !== 'ok') return { available: false, reason: `needs a GPU: ${gpu.message}` };
    }
    if (!generator.checkAvailability) return { available: true };
    try {
      return await generator.checkAvailability(AbortSignal.timeout(CHECK_TIMEOUT_MS));
    } catch (error) {
      return { available: false, reason: (error as Error).message };
    }
  }

  /**
   * Only a worker told to serve the GPU queue needs a GPU of its own: by default a worker serves
   * it only where it found one, and elsewhere GPU workers have GPUs this process cannot see.
   */
  private servesGpuQueue(): boolean {
    return this.config.runsWorker && (this.config.worker.queues?.includes('gpu') ?? false);
  }
}
