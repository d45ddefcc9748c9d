import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators.js';
import { ApiProblems } from '../common/api-problems.decorator.js';
import { apiRef } from '../common/openapi.js';
import { cleanupReportSchema } from './cleanup.dto.js';
import { type CleanupReport, CleanupService } from './cleanup.service.js';

@AdminOnly()
@ApiBearerAuth()
@ApiProblems(401, 403, 429)
@ApiTags('admin')
@Controller('admin/cleanup')
export class CleanupController {
  constructor(private readonly cleanup: CleanupService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Run every cleanup task now and report what each removed' })
  @ApiResponse({ status: 200, schema: apiRef(cleanupReportSchema) })
  run(): Promise<CleanupReport> {
    return this.cleanup.runAll();
  }
}
