import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BeforeApplicationShutdown,
  Injectable,
  Logger,
  type OnModuleDestroy,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { settlesWithin } from '../common/timeout.js';
import { KilnConfig } from '../config/config.js';
import { Readiness } from '../health/readiness.service.js';

/** How long requests in flight at shutdown get to finish. */
const DRAIN_MS = 5_000;
const IDLE_SWEEP_MS = 50;

/**
 * Shutdown, as seen from HTTP. First readiness turns off, and the API keeps serving while load
 * balancers notice. Then, since Nest closes the HTTP server only after every shutdown hook (the
 * database's included), it is closed early so that requests in flight can finish.
 */
@Injectable()
export class HttpDrain implements OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger('Http');

  constructor(
    private readonly host: HttpAdapterHost,
    private readonly readiness: Readiness,
    private readonly config: KilnConfig,
  ) {}

  /** The root module's hook: Nest runs it before any other module's. */
  async onModuleDestroy(): Promise<void> {
    this.readiness.beginShutdown();
    const delayMs = this.config.runsApi ? this.config.health.readinessDelayMs : 0;
    if (delayMs > 0) {
      this.logger.log(`Not ready; serving ${delayMs} ms more while traffic moves away`);
      await sleep(delayMs);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.host.httpAdapter.getInstance<FastifyInstance>();
    const closed = server.close();
    // close() drops the connections idle at that moment; one that turns idle later (its request
    // or stream ended during the drain) would be kept alive, and the close pending, for
    // keepAliveTimeout.
    const sweep = setInterval(() => server.server.closeIdleConnections(), IDLE_SWEEP_MS);
    try {
      if (await settlesWithin(closed, DRAIN_MS)) return;
      this.logger.warn(`Requests still open after ${DRAIN_MS} ms; closing anyway`);
      server.server.closeAllConnections();
    } finally {
      clearInterval(sweep);
    }
  }
}
