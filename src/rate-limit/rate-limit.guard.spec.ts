import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { SkipThrottle, Throttle } from '@nestjs/throttler';
import { describe, expect, it } from 'vitest';
import { Public } from '../auth/auth.decorators.js';
import type { DependencyOutages } from '../common/dependency-outages.service.js';
import type { KilnConfig } from '../config/config.js';
import type { KilnMetrics } from '../metrics/kiln-metrics.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { type Batch, RateLimitStorage } from './rate-limit.storage.js';
import { Submits } from './submit-cost.decorator.js';

/** A storage that counts one request under its limits: the weights counted, none refused. */
class Admitting extends RateLimitStorage {
  readonly available = true;
  key = (tracker: string, limit: string) => `${tracker}:${limit}`;
  sweep = () => Promise.resolve(0);
  protected hit({ counts, weights }: Batch) {
    return Promise.resolve([...weights, 0, ...counts.map((count) => count.ttlMs)]);
  }
}

const guard = new RateLimitGuard(
  {
    throttlers: [
      { name: 'burst', ttl: 1_000, limit: 10 },
      { name: 'general', ttl: 60_000, limit: () => 60 },
      { name: 'submit', ttl: 60_000, limit: 5 },
    ],
  },
  new Admitting(),
  new Reflector(),
  {
    rateLimit: { enabled: true, whitelist: { ips: [], keyNames: [] } },
    auth: { disabled: false },
  } as unknown as KilnConfig,
  { rateLimited: { inc() {} } } as unknown as KilnMetrics,
  {} as DependencyOutages,
);

class Routes {
  plain(this: void) {}
  @Throttle({ general: { limit: 2, ttl: 5_000 } })
  tight(this: void) {}
  @SkipThrottle({ burst: true })
  unhurried(this: void) {}
  @Submits(() => 3)
  submit(this: void) {}
  @Public()
  open(this: void) {}
}

@SkipThrottle({ general: true })
class BurstOnly {
  read(this: void) {}
}

/** The `RateLimit-Policy` header a request to this route gets; null when nothing counts it. */
async function policyOf(controller: new () => object, handler: () => void) {
  const headers: Record<string, string>[] = [];
  const reply = { headers: (sent: Record<string, string>) => headers.push(sent) };
  const request = { ip: '192.0.2.1', body: {} };
  const context = new ExecutionContextHost([request, reply], controller, handler);
  expect(await guard.canActivate(context)).toBe(true);
  return headers[0]?.['ratelimit-policy'] ?? null;
}

describe('RateLimitGuard', () => {
  it("applies the module's named limits; submit only where a route submits", async () => {
    const { plain, submit } = Routes.prototype;
    expect(await policyOf(Routes, plain)).toBe('"burst";q=10;w=1, "general";q=60;w=60');
    expect(await policyOf(Routes, submit)).toBe(
      '"burst";q=10;w=1, "general";q=60;w=60, "submit";q=5;w=60',
    );
  });

  it('takes @Throttle and @SkipThrottle on a route or its controller', async () => {
    const { tight, unhurried } = Routes.prototype;
    expect(await policyOf(Routes, tight)).toBe('"burst";q=10;w=1, "general";q=2;w=5');
    expect(await policyOf(Routes, unhurried)).toBe('"general";q=60;w=60');
    expect(await policyOf(BurstOnly, BurstOnly.prototype.read)).toBe('"burst";q=10;w=1');
  });

  it('limits no public route', async () => {
    expect(await policyOf(Routes, Routes.prototype.open)).toBeNull();
  });
});
