import { Global, Injectable, Logger, Module, type OnModuleInit } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { KilnConfig } from '../config/config.js';
import { withAdvisoryLock } from './advisory-lock.js';
import { dataSourceOptions } from './data-source-options.js';
import { Sql } from './sql.service.js';

/** Applies pending migrations at start; replicas starting together take turns on a lock. */
@Injectable()
class MigrationRunner implements OnModuleInit {
  private readonly logger = new Logger('Database');

  constructor(
    private readonly config: KilnConfig,
    private readonly dataSource: DataSource,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.database.migrateOnStart) return;
    const applied = await withAdvisoryLock(
      this.dataSource,
      'migrations',
      () => this.dataSource.runMigrations({ transaction: 'each' }),
      { wait: true },
    );
    for (const migration of applied ?? []) this.logger.log(`Applied migration ${migration.name}`);
  }
}

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [KilnConfig],
      useFactory: (config: KilnConfig) => dataSourceOptions(config),
    }),
  ],
  providers: [MigrationRunner, Sql],
  exports: [Sql],
})
export class DatabaseModule {}
