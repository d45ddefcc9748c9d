import { CacheModule as NestCacheModule } from '@nestjs/cache-manager';
import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { GpuModule } from '../gpu/gpu.module.js';
import { GeneratorAvailability } from './generator-availability.service.js';
import { GeneratorRegistry } from './generator.registry.js';
import { CommandGenerators } from './generators/command/command.generators.js';
import { ModelServerGenerators } from './generators/model-server/model-server.generators.js';
import { OrphanedProcessGroups } from './orphaned-process-groups.service.js';
import { MusicGenerator } from './generators/music/music.generator.js';
import { PdfReportGenerator } from './generators/pdf-report/pdf-report.generator.js';
import { EspeakVoices } from './generators/speech/espeak-voices.js';
import { SpeechGenerator } from './generators/speech/speech.generator.js';

/** The generators this process knows and whether each can run here. */
@Module({
  // In memory: what a generator finds installed belongs to this host.
  imports: [DiscoveryModule, GpuModule, NestCacheModule.register()],
  providers: [
    GeneratorRegistry,
    GeneratorAvailability,
    EspeakVoices,
    MusicGenerator,
    PdfReportGenerator,
    SpeechGenerator,
    CommandGenerators,
    ModelServerGenerators,
    OrphanedProcessGroups,
  ],
  exports: [GeneratorRegistry, GeneratorAvailability, EspeakVoices],
})
export class GenerationModule {}
