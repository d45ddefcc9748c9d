import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Headers, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators.js';
import { ProblemError } from '../common/problem.js';
import { KilnConfig } from '../config/config.js';
import { ScrapeCollectors } from './scrape-collectors.service.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/** `GET /metrics` for Prometheus: no API key, optionally its own bearer token (`METRICS_TOKEN`). */
@Public()
@ApiExcludeController()
@Controller()
export class MetricsController extends PrometheusController {
  constructor(
    private readonly config: KilnConfig,
    private readonly collectors: ScrapeCollectors,
  ) {
    super();
  }

  @Get()
  override async index(
    @Res({ passthrough: true }) response: FastifyReply,
    @Headers('authorization') authorization?: string,
  ): Promise<string> {
    this.authorize(authorization);
    await this.collectors.collect();
    return super.index(response);
  }

  private authorize(authorization: string | undefined): void {
    const { token } = this.config.metrics;
    if (!token) return;
    const given = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1] ?? '';
    // Equal-length digests: the comparison time says nothing about the token.
    if (!timingSafeEqual(digest(given), digest(token))) {
      throw new ProblemError('unauthorized', 'The metrics token is missing or wrong.', {
        headers: { 'www-authenticate': 'Bearer realm="metrics"' },
      });
    }
  }
}
