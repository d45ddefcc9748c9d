import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/api-problems.decorator.js';
import { type CatalogEntry, GeneratorRegistry } from './generator.registry.js';

@ApiBearerAuth()
@ApiProblems(401, 429)
@ApiTags('generators')
@Controller('generators')
export class GeneratorsController {
  constructor(private readonly registry: GeneratorRegistry) {}

  @Get()
  @ApiOperation({ summary: 'The job kinds, with their input schemas, examples and resources' })
  list(): CatalogEntry[] {
    return this.registry.catalog();
  }
}
