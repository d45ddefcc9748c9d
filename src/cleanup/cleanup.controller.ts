import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { apiRef } from '../common/openapi.js';
import { cleanupReportSchema } from './cleanup.dto.js';
import { type CleanupReport, CleanupService } from './cleanup.service.js';

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
