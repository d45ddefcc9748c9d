import { LoggerModule } from 'nestjs-pino';
import { KilnConfig } from '../config/config.js';
import { loggerParams } from './logger.options.js';

/**
 * Structured JSON logs (pino) for requests and for Nest's `Logger`; `createKilnApp` makes it the
 * application's logger. Pino is one per process: the first application's configuration wins.
 */
export const LoggingModule = LoggerModule.forRootAsync({
  inject: [KilnConfig],
  useFactory: loggerParams,
});
