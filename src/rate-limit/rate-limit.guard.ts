import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  type Resolvable,
  type ThrottlerModuleOptions,
  type ThrottlerOptions,
} from '@nestjs/throttler';
// The keys @Throttle and @SkipThrottle write: the package's index does not re-export them.
import {
  THROTTLER_LIMIT,
  THROTTLER_SKIP,
  THROTTLER_TTL,
} from '@nestjs/throttler/dist/throttler.constants.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PUBLIC_ROUTE } from '../auth/auth.decorators.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { ProblemError } from '../common/problem.js';
import { unavailableDependency } from '../common/unavailable.js';
import { KilnConfig } from '../config/config.js';
import { KilnMetrics } from '../metrics/kiln-metrics.js';
import { type Count, RateLimitStorage } from './rate-limit.storage.js';
import { SUBMIT_COST, SUBMIT_LIMIT, type SubmitCost } from './submit-cost.decorator.js';

/** A named limit as one route applies it: the module's, or the route's `@Throttle` override. */
interface RouteLimit {
  name: string;
  limit: Resolvable<number>;
  ttl: Resolvable<number>;
  /** What one request counts: 1, or against `submit` the jobs it carries. */
  weight: SubmitCost;
}

/** A limit this request counts against, with what its headers need. */
interface PendingCount extends Count {
  name: string;
}

const one = () => 1;

/** A limit or window, awaited only when it is a promise: most are plain numbers. */
const resolve = (value: Resolvable<number>, context: ExecutionContext) =>
  typeof value === 'function' ? value(context) : value;

/**
 * Applies the named limits of `ThrottlerModule` with Kiln's rules: one budget per API key (else per
 * client IP) across every route and replica, submissions weighted by the jobs they carry (`submit`
 * counts only routes marked `@Submits()`), the IETF `RateLimit` headers, and a problem document for
 * the 429. `@Public()` routes are not limited; `@SkipThrottle({ name: true })` and
 * `@Throttle({ name: { limit, ttl } })` skip or override one limit on a route or controller. Of the
 * module's options it reads each limit's `name`, `limit` and `ttl`.
 *
 * All the limits of a request are counted in one round trip to the storage (Redis or PostgreSQL),
 * shared with the caller's other requests of the same event-loop turn. Without it, it fails open.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly throttlers: readonly ThrottlerOptions[];
  /** Each route's limits, read from its decorators once rather than on every request. */
  private readonly routes = new WeakMap<object, readonly RouteLimit[]>();

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    private readonly storage: RateLimitStorage,
    private readonly reflector: Reflector,
    private readonly config: KilnConfig,
    private readonly metrics: KilnMetrics,
    private readonly outages: DependencyOutages,
  ) {
    this.throttlers = Array.isArray(options) ? options : options.throttlers;
  }

  /**
   * Without their storage the limits fail open: submissions keep working through a Redis outage
   * (the reconciler enqueues them once it is back), and refusing every request would turn the
   * outage into a full one.
   */
  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.config.rateLimit.enabled) return true;
    const limits = this.limitsOf(context);
    if (limits.length === 0) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (this.isWhitelisted(request) || !this.storage.available) return true;
    const counts = await this.countsOf(context, limits, request);
    if (counts.length === 0) return true;
    let counted;
    try {
      counted = await this.storage.count(counts);
    } catch (error) {
      const dependency = unavailableDependency(error);
      if (!dependency) throw error;
      this.outages.failed(dependency, error);
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
      'rate-limited',
      weight > 1
        ? `This request counts ${weight} against the ${window}, and only ${remaining(refused)} remain; retry after ${retryAfter} s.`
        : `Over the ${window}; retry after ${retryAfter} s.`,
      { headers: { ...headers, 'retry-after': String(retryAfter) } },
    );
  }

  private isWhitelisted({ principal, ip }: FastifyRequest): boolean {
    const { whitelist } = this.config.rateLimit;
    return (
      whitelist.ips.includes(ip) ||
      (principal !== undefined && whitelist.keyNames.includes(principal.name))
    );
  }

  private limitsOf(context: ExecutionContext): readonly RouteLimit[] {
    const handler = context.getHandler();
    let limits = this.routes.get(handler);
    if (!limits) {
      limits = this.readLimits(context);
      this.routes.set(handler, limits);
    }
    return limits;
  }

  private readLimits(context: ExecutionContext): RouteLimit[] {
    const targets = [context.getHandler(), context.getClass()];
    const read = <T>(key: string) => this.reflector.getAllAndOverride<T | undefined>(key, targets);
    if (read<boolean>(PUBLIC_ROUTE)) return [];
    const cost = this.reflector.get<SubmitCost | undefined>(SUBMIT_COST, context.getHandler());
    return this.throttlers.flatMap(({ name = 'default', limit, ttl }) => {
      if (read<boolean>(THROTTLER_SKIP + name)) return [];
      const weight = name === SUBMIT_LIMIT ? cost : one;
      if (!weight) return [];
      return [
        {
          name,
          limit: read<Resolvable<number>>(THROTTLER_LIMIT + name) ?? limit,
          ttl: read<Resolvable<number>>(THROTTLER_TTL + name) ?? ttl,
          weight,
        },
      ];
    });
  }

  /** The route's limits this request counts against, with its weight in each. */
  private async countsOf(
    context: ExecutionContext,
    limits: readonly RouteLimit[],
    request: FastifyRequest,
  ): Promise<PendingCount[]> {
    const tracker = this.trackerOf(request);
    const counts: PendingCount[] = [];
    for (const { name, limit, ttl, weight } of limits) {
      const counted = weight(request.body);
      if (counted === 0) continue;
      const limitNow = resolve(limit, context);
      const ttlNow = resolve(ttl, context);
      counts.push({
        name,
        key: this.storage.key(tracker, name),
        limit: typeof limitNow === 'number' ? limitNow : await limitNow,
        ttlMs: typeof ttlNow === 'number' ? ttlNow : await ttlNow,
        weight: counted,
      });
    }
    return counts;
  }

  /** The caller's API key (as its owner id); the client's IP when auth is switched off. */
  private trackerOf({ principal, ip }: FastifyRequest): string {
    return principal && !this.config.auth.disabled ? `key:${principal.ownerId}` : `ip:${ip}`;
  }
}
