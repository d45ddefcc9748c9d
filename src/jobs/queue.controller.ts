import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/api-problems.decorator.js';
import { apiRef } from '../common/openapi.js';
import { type QueueStats, queueStatsSchema } from './job.dto.js';
import { JobsService } from './jobs.service.js';

@ApiBearerAuth()
@ApiProblems(401, 429)
@ApiTags('queue')
@Controller('queue')
export class QueueController {
  constructor(private readonly jobs: JobsService) {}

  @Get('stats')
  @ApiOperation({ summary: 'Jobs by status, oldest pending age, mean run time, BullMQ counts' })
  @ApiResponse({ status: 200, schema: apiRef(queueStatsSchema) })
  stats(): Promise<QueueStats> {
    return this.jobs.stats();
  }
}
