import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { type CatalogEntry, GeneratorRegistry } from './generator.registry.js';

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
