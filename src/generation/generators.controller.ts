import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../common/api-problems.decorator.js';
import { GeneratorAvailability } from './generator-availability.service.js';

@ApiBearerAuth()
@ApiProblems(401, 429)
@ApiTags('generators')
@Controller('generators')
export class GeneratorsController {
  constructor(private readonly availability: GeneratorAvailability) {}

  @Get()
  @ApiOperation({
    summary: 'The job kinds, with their input schemas, examples, resources and availability',
  })
  list(): ReturnType<GeneratorAvailability['catalog']> {
    return this.availability.catalog();
  }
}
