import { Global, Logger, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { KilnConfig } from '../config/config.js';
import { ApiKey } from './api-key.entity.js';
import { ApiKeys } from './api-keys.service.js';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([ApiKey])],
  providers: [ApiKeys],
  exports: [ApiKeys],
})
export class AuthModule implements OnApplicationBootstrap {
  constructor(private readonly config: KilnConfig) {}

  onApplicationBootstrap(): void {
    if (this.config.auth.disabled && this.config.runsApi) {
      new Logger('Auth').warn(
        'AUTH_DISABLED=true: every request is served as an admin without an API key. ' +
          'Never run this way outside local development.',
      );
    }
  }
}
