import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { KilnConfig } from '../config/config.js';

const NS_PER_MS = 1e6;

/** Liveness: this process alone, never a dependency (an outage must not restart healthy pods). */
@Injectable()
export class ProcessHealth implements OnModuleDestroy {
  private readonly eventLoop = monitorEventLoopDelay({ resolution: 20 });

  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly config: KilnConfig,
  ) {
    this.eventLoop.enable();
  }

  onModuleDestroy(): void {
    this.eventLoop.disable();
  }

  /** The event loop's p99 delay since the previous probe. */
  eventLoopDelay() {
    const indicator = this.indicators.check('event_loop');
    const p99Ms = this.eventLoop.percentile(99) / NS_PER_MS;
    this.eventLoop.reset();
    const limitMs = this.config.health.maxEventLoopDelayMs;
    const data = { message: `p99 delay ${p99Ms.toFixed(1)} ms`, details: { p99Ms, limitMs } };
    return p99Ms <= limitMs ? indicator.up(data) : indicator.down(data);
  }

  heap() {
    const indicator = this.indicators.check('heap');
    const { used_heap_size: used, heap_size_limit: limit } = getHeapStatistics();
    const ratio = used / limit;
    const maxRatio = this.config.health.maxHeapRatio;
    const data = {
      message: `${Math.round(ratio * 100)} % of the heap limit in use`,
      details: { usedBytes: used, limitBytes: limit, maxRatio },
    };
    return ratio <= maxRatio ? indicator.up(data) : indicator.down(data);
  }
}
