import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  getOptionsToken,
  getStorageToken,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerOptions,
} from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PUBLIC_ROUTE } from '../auth/auth.decorators.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { ProblemError } from '../common/problem.js';
import { isUnavailable } from '../common/unavailable.js';
import { KilnConfig } from '../config/config.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { RedisService } from '../redis/redis.service.js';
import { type Count, RedisThrottlerStorage } from './redis-throttler.storage.js';
import { SUBMIT_COST, type SubmitCost } from './submit-cost.decorator.js';

/** A limit this request counts against, with what its headers need. */
interface PendingCount extends Count {
  name: string;
}

/** A limit or window, awaited only when it is a promise: most are plain numbers. */
const resolve = (value: ThrottlerOptions['limit'], context: ExecutionContext) =>
  typeof value === 'function' ? value(context) : value;

/**
 * `@nestjs/throttler` with Kiln's rules: one budget per API key (else per client IP) across every
 * route and replica, submissions weighted by the jobs they carry, the IETF `RateLimit` headers,
 * and a problem document for the 429.
 *
 * The limits are per caller, not per route: routes opt out with `@Public()` and weigh with
 * `@Submits()`, so the throttler's route decorators are not read. Its own loop looked each of
 * them up for every limit of every request: 6 to 14 % of a submission's CPU.
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
    private readonly outages: DependencyOutages,
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

  /** A caller's counters share a hash tag, so a Redis Cluster keeps them on one node. */
  protected override generateKey(_context: ExecutionContext, tracker: string, name: string) {
    return this.redis.key(`rate-limit:{${tracker}}:${name}`);
  }

  /**
   * Every limit of the request is counted in one round trip. Without Redis the limits fail open:
   * submissions keep working through a Redis outage (the reconciler enqueues them once it is
   * back), and refusing every request would turn the outage into a full one.
   */
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (await this.shouldSkip(context)) return true;
    if (!this.redis.available) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const counts = await this.countsOf(context, request);
    if (counts.length === 0) return true;
    let counted;
    try {
      counted = await this.storage.count(counts);
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      this.outages.failed('redis', error);
      return true;
    }
    const { used, resetMs, refused } = counted;
    const resetSeconds = resetMs.map((ms) => Math.max(1, Math.ceil(ms / 1000)));
    const windowSeconds = (count: Count) => Math.round(count.ttlMs / 1000);
    const remaining = (i: number) => Math.max(0, counts[i]!.limit - used[i]!);
    const headers = {
      'ratelimit-policy': counts
        .map((count) => `"${count.name}";q=${count.limit};w=${windowSeconds(count)}`)
        .join(', '),
      ratelimit: counts
        .map((count, i) => `"${count.name}";r=${remaining(i)};t=${resetSeconds[i]}`)
        .join(', '),
    };
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    if (refused === null) {
      void reply.headers(headers);
      return true;
    }
    const { name, limit, weight } = counts[refused]!;
    const retryAfter = resetSeconds[refused]!;
    const window = `${name} limit of ${limit} per ${windowSeconds(counts[refused]!)} s`;
    this.metrics.rateLimited.inc({ throttler: name });
    throw new ProblemError(
      429,
      'rate-limited',
      weight > 1
        ? `This request counts ${weight} against the ${window}, and only ${remaining(refused)} remain; retry after ${retryAfter} s.`
        : `Over the ${window}; retry after ${retryAfter} s.`,
      { headers: { ...headers, 'retry-after': String(retryAfter) } },
    );
  }

  /** The configured limits this request counts against, with its weight in each. */
  private async countsOf(context: ExecutionContext, request: FastifyRequest) {
    const tracker = await this.getTracker(request as never);
    const counts: PendingCount[] = [];
    for (const throttler of this.throttlers) {
      const name = throttler.name ?? 'default';
      const weight = this.weight(context, name, request);
      if (weight === 0) continue;
      const limit = resolve(throttler.limit, context);
      const ttlMs = resolve(throttler.ttl, context);
      counts.push({
        name,
        key: this.generateKey(context, tracker, name),
        limit: typeof limit === 'number' ? limit : await limit,
        ttlMs: typeof ttlMs === 'number' ? ttlMs : await ttlMs,
        weight,
      });
    }
    return counts;
  }

  /** The submit limit counts only submissions, by the jobs they carry; the others count 1. */
  private weight(context: ExecutionContext, name: string, request: FastifyRequest): number {
    if (name !== 'submit') return 1;
    const cost = this.reflector.get<SubmitCost | undefined>(SUBMIT_COST, context.getHandler());
    return cost ? cost(request.body) : 0;
  }
}
