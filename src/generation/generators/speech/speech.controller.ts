import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../../../common/api-problems.decorator.js';
import { apiRef } from '../../../common/openapi.js';
import { GeneratorAvailability } from '../../generator-availability.service.js';
import { EspeakVoices, type VoiceList, voiceListSchema } from './espeak-voices.js';

@ApiBearerAuth()
@ApiProblems(401, 429, 503)
@ApiTags('generators')
@Controller('generators/speech')
export class SpeechController {
  constructor(
    private readonly voices: EspeakVoices,
    private readonly availability: GeneratorAvailability,
  ) {}

  @Get('voices')
  @ApiOperation({
    summary: "The speech generator's installed voices and variants (cached for an hour)",
  })
  @ApiResponse({ status: 200, schema: apiRef(voiceListSchema) })
  list(): Promise<VoiceList> {
    this.availability.require(['speech']);
    return this.voices.list();
  }
}
