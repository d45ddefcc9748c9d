import { type DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { GeneratorRegistry } from './generator.registry.js';
import { GeneratorsController } from './generators.controller.js';
import { MusicGenerator } from './generators/music/music.generator.js';

@Module({})
export class GenerationModule {
  static forRoot({ api }: { api: boolean }): DynamicModule {
    return {
      module: GenerationModule,
      imports: [DiscoveryModule],
      controllers: api ? [GeneratorsController] : [],
      providers: [GeneratorRegistry, MusicGenerator],
      exports: [GeneratorRegistry],
    };
  }
}
