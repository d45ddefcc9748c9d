import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  getOptionsToken,
  getStorageToken,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
} from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PUBLIC_ROUTE } from '../auth/auth.decorators.js';
import { ProblemError } from '../common/problem.js';
import { KilnConfig } from '../config/config.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { RedisService } from '../redis/redis.service.js';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';
import { SUBMIT_COST, type SubmitCost } from './submit-cost.decorator.js';

/** The policies a request was counted against, for its `RateLimit` headers. */
interface Counted {
  policies: string[];
  remaining: string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    rateLimits?: Counted;
  }
}

/**
 * `@nestjs/throttler` with Kiln's rules: one budget per API key (else per client IP) across every
 * route and replica, submissions weighted by the jobs they carry, the IETF `RateLimit` headers,
 * and a problem document for the 429.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @Inject(getOptionsToken()) options: ThrottlerModuleOptions,
    @Inject(getStorageToken()) private readonly storage: RedisThrottlerStorage,
    reflector: Reflector,
    private readonly config: KilnConfig,
    private readonly metrics: KilnMetrics,
    private readonly redis: RedisService,
  ) {
    super(options, storage, reflector);
  }

  protected override async shouldSkip(context: ExecutionContext): Promise<boolean> {
    const { enabled, whitelist } = this.config.rateLimit;
    if (!enabled) return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const { principal, ip } = request;
    return Promise.resolve(
      whitelist.ips.includes(ip) ||
        (principal !== undefined && whitelist.keyNames.includes(principal.name)),
    );
  }

  /** The caller's API key (as its owner id); the client's IP when auth is switched off. */
  protected override async getTracker(request: Record<string, unknown>): Promise<string> {
    const { principal, ip } = request as unknown as FastifyRequest;
    return Promise.resolve(
      principal && !this.config.auth.disabled ? `key:${principal.ownerId}` : `ip:${ip}`,
    );
  }

  protected override generateKey(_context: ExecutionContext, tracker: string, name: string) {
    return this.redis.key(`rate-limit:${name}:${tracker}`);
  }

  protected override async handleRequest({
    context,
    limit,
    ttl,
    throttler,
  }: ThrottlerRequest): Promise<boolean> {
    const name = throttler.name ?? 'default';
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const weight = this.weight(context, name, request);
    if (weight === 0) return true;
    const key = this.generateKey(context, await this.getTracker(request as never), name);
    const hit = await this.storage.hit(key, ttl, limit, weight);
    const resetSeconds = Math.max(1, Math.ceil(hit.resetMs / 1000));
    const counted = (request.rateLimits ??= { policies: [], remaining: [] });
    counted.policies.push(`"${name}";q=${limit};w=${Math.round(ttl / 1000)}`);
    counted.remaining.push(`"${name}";r=${Math.max(0, limit - hit.used)};t=${resetSeconds}`);
    const headers = {
      'ratelimit-policy': counted.policies.join(', '),
      ratelimit: counted.remaining.join(', '),
    };
    void reply.headers(headers);
    if (!hit.refused) return true;
    this.metrics.rateLimited.inc({ throttler: name });
    throw new ProblemError(
      429,
      'rate-limited',
      weight > 1
        ? `This request counts ${weight} against the ${name} limit of ${limit} per ${Math.round(ttl / 1000)} s, and only ${Math.max(0, limit - hit.used)} remain; retry after ${resetSeconds} s.`
        : `Over the ${name} limit of ${limit} per ${Math.round(ttl / 1000)} s; retry after ${resetSeconds} s.`,
      { headers: { ...headers, 'retry-after': String(resetSeconds) } },
    );
  }

  /** The submit limit counts only submissions, by the jobs they carry; the others count 1. */
  private weight(context: ExecutionContext, name: string, request: FastifyRequest): number {
    if (name !== 'submit') return 1;
    const cost = this.reflector.get<SubmitCost | undefined>(SUBMIT_COST, context.getHandler());
    return cost ? cost(request.body) : 0;
  }
}
