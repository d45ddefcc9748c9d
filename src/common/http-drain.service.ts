import { setTimeout as sleep } from 'node:timers/promises';
import { type BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';

/** How long requests in flight at shutdown get to finish. */
const DRAIN_MS = 5_000;

/**
 * Nest closes the HTTP server only after every shutdown hook, the database's included, so a
 * request in flight would lose its connection. Closing it first lets those requests finish.
 */
@Injectable()
export class HttpDrain implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Http');

  constructor(private readonly host: HttpAdapterHost) {}

  async beforeApplicationShutdown(): Promise<void> {
    const server = this.host.httpAdapter.getInstance<FastifyInstance>();
    const drained = await Promise.race([
      server.close().then(() => true),
      sleep(DRAIN_MS).then(() => false),
    ]);
    if (!drained) this.logger.warn(`Requests still open after ${DRAIN_MS} ms; closing anyway`);
  }
}
