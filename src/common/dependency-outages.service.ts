import { Global, Injectable, Logger, Module } from '@nestjs/common';
import { DEPENDENCY_NAMES, type Dependency } from './unavailable.js';

/** While an outage lasts, it is logged again this often, in case its end went unnoticed. */
const REPEAT_MS = 30_000;

/** An error's own words; an AggregateError (IPv4 and IPv6 both refused) keeps them inside. */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  return error instanceof Error ? error.message || error.name : String(error);
}

/**
 * One warning when PostgreSQL or Redis becomes unavailable, however many requests, connections
 * and retries run into it, and one line when it answers again: not a stack per request.
 */
@Injectable()
export class DependencyOutages {
  private readonly logger = new Logger('Dependencies');
  /** When each dependency that is down was last reported. */
  private readonly reported = new Map<Dependency, number>();

  failed(dependency: Dependency, error: unknown): void {
    const last = this.reported.get(dependency);
    if (last !== undefined && Date.now() - last < REPEAT_MS) return;
    this.reported.set(dependency, Date.now());
    this.logger.warn({
      message: `${DEPENDENCY_NAMES[dependency]} is unavailable: ${reasonOf(error)}; requests that need it answer 503`,
      dependency,
      outage: last === undefined ? 'started' : 'continues',
    });
  }

  restored(dependency: Dependency): void {
    if (!this.reported.delete(dependency)) return;
    this.logger.log({
      message: `${DEPENDENCY_NAMES[dependency]} answers again`,
      dependency,
      outage: 'ended',
    });
  }
}

@Global()
@Module({ providers: [DependencyOutages], exports: [DependencyOutages] })
export class DependencyOutagesModule {}
