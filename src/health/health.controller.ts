import { Controller, Get, Header, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  type HealthCheckResult,
  HealthCheckService,
  type HealthIndicatorFunction,
  type HealthIndicatorResult,
} from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators.js';
import { apiRef } from '../common/openapi.js';
import { KilnConfig } from '../config/config.js';
import packageJson from '../../package.json' with { type: 'json' };
import { DependenciesHealth } from './dependencies.health.js';
import { DiskHealth } from './disk.health.js';
import { GeneratorsHealth } from './generators.health.js';
import { GpuHealth } from './gpu.health.js';
import {
  type HealthCheckView,
  type HealthReport,
  healthReportSchema,
} from './health-report.dto.js';
import { ProcessHealth } from './process.health.js';
import { QueueHealth } from './queue.health.js';
import { Readiness } from './readiness.service.js';

const VIEW_STATUS = { up: 'healthy', degraded: 'degraded', down: 'unhealthy' } as const;

/** Probes for Kubernetes and a report for people; outside `/api/v1`, without auth or caching. */
@Public()
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly processHealth: ProcessHealth,
    private readonly dependencies: DependenciesHealth,
    private readonly disk: DiskHealth,
    private readonly gpu: GpuHealth,
    private readonly queue: QueueHealth,
    private readonly generators: GeneratorsHealth,
    private readonly readiness: Readiness,
    private readonly config: KilnConfig,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({
    summary: 'Liveness: this process only (event-loop delay, heap), never a dependency',
  })
  live(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    return this.probe(reply, [
      () => this.processHealth.eventLoopDelay(),
      () => this.processHealth.heap(),
    ]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary:
      'Readiness: PostgreSQL, Redis where it carries the queues, free disk, and the GPU where one is required',
  })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    const result = await this.probe(reply, [
      () => this.dependencies.database(),
      ...(this.dependencies.hasRedis ? [() => this.dependencies.redis()] : []),
      () => this.disk.check(),
      ...(this.config.gpu.required ? [() => this.gpu.check()] : []),
    ]);
    if (!this.readiness.shuttingDown) return result;
    // Traffic goes elsewhere from the first moment of shutdown, while running work drains.
    void reply.status(503);
    return { ...result, status: 'shutting_down' };
  }

  @Get()
  @Header('Cache-Control', 'no-cache, no-store, must-revalidate')
  @ApiOperation({ summary: 'The full report: healthy, degraded or unhealthy, with every check' })
  @ApiResponse({
    status: 200,
    description: 'Healthy or degraded',
    schema: apiRef(healthReportSchema),
  })
  @ApiResponse({ status: 503, description: 'Unhealthy', schema: apiRef(healthReportSchema) })
  async report(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    const [database, redis, queue, diskSpace] = await Promise.all([
      this.dependencies.database(),
      this.dependencies.hasRedis ? this.dependencies.redis() : undefined,
      this.queue.check(),
      this.disk.check(),
    ]);
    const checks = {
      database: toView(database.database),
      ...(redis ? { redis: toView(redis.redis) } : {}),
      gpu: toView(this.gpu.check().gpu),
      queue: toView(queue.queue),
      disk_space: toView(diskSpace.disk_space),
      generators: toView(this.generators.check().generators),
    };
    const statuses = Object.values(checks).map((check) => check.status);
    const status = statuses.includes('unhealthy')
      ? 'unhealthy'
      : statuses.includes('degraded')
        ? 'degraded'
        : 'healthy';
    if (status === 'unhealthy') void reply.status(503);
    return {
      status,
      version: packageJson.version,
      uptime_seconds: Math.round(process.uptime()),
      timestamp: new Date().toISOString(),
      checks,
    };
  }

  /** Terminus's body either way; a probe reads only the status code. */
  private async probe(
    reply: FastifyReply,
    indicators: HealthIndicatorFunction[],
  ): Promise<HealthCheckResult> {
    try {
      return await this.health.check(indicators);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      void reply.status(503);
      return error.getResponse() as HealthCheckResult;
    }
  }
}

function toView(result: HealthIndicatorResult[string]): HealthCheckView {
  const { status, message, details, responseTime } = result as {
    status: keyof typeof VIEW_STATUS;
    message?: string;
    details?: Record<string, unknown>;
    responseTime?: number;
  };
  return {
    status: VIEW_STATUS[status],
    message: message ?? status,
    ...(details || responseTime !== undefined
      ? {
          details: {
            ...details,
            ...(responseTime !== undefined ? { responseTimeMs: responseTime } : {}),
          },
        }
      : {}),
  };
}
