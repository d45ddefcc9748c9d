import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { KilnMetrics } from './kiln-metrics.js';
import { RouteLatency } from './route-latency.service.js';

/** Requests no route matched share one label: raw URLs would explode the series count. */
const UNMATCHED_ROUTE = 'unmatched';

/** Times every HTTP response by its route template (`/api/v1/jobs/:id`), never its raw URL. */
@Injectable()
export class HttpMetrics implements OnModuleInit {
  constructor(
    private readonly host: HttpAdapterHost,
    private readonly metrics: KilnMetrics,
    private readonly latency: RouteLatency,
  ) {}

  onModuleInit(): void {
    const server = this.host.httpAdapter.getInstance<FastifyInstance>();
    server.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
      const ms = reply.elapsedTime;
      this.metrics.httpRequestDuration.observe(
        { method: request.method, route, status_code: reply.statusCode },
        ms / 1000,
      );
      this.latency.record(request.method, route, ms);
      done();
    });
  }
}
