import { type DynamicModule, Global, Module } from '@nestjs/common';
import { KilnConfig } from './config.js';

@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: KilnConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: KilnConfig, useValue: config }],
      exports: [KilnConfig],
    };
  }
}
