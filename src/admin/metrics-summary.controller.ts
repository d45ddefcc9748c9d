import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators.js';
import { ApiProblems } from '../common/api-problems.decorator.js';
import { apiRef } from '../common/openapi.js';
import { ZodPipe } from '../common/validation.js';
import {
  type MetricsSummary,
  metricsSummarySchema,
  summaryQuerySchema,
} from './metrics-summary.dto.js';
import { MetricsSummaryService } from './metrics-summary.service.js';

@AdminOnly()
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@ApiTags('admin')
@Controller('admin/metrics')
export class MetricsSummaryController {
  constructor(private readonly summaries: MetricsSummaryService) {}

  @Get('summary')
  @ApiOperation({
    summary: 'Job and route percentiles, success rates and queue figures over the last hours',
  })
  @ApiResponse({ status: 200, schema: apiRef(metricsSummarySchema) })
  @ApiProblems(400)
  summary(
    @Query(new ZodPipe(summaryQuerySchema)) query: { hours: number },
  ): Promise<MetricsSummary> {
    return this.summaries.summary(query.hours);
  }
}
