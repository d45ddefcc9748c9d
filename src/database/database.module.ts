import { Global, Injectable, Logger, Module, type OnModuleInit } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { KilnConfig } from '../config/config.js';
import { withAdvisoryLock } from './advisory-lock.js';
import { dataSourceOptions } from './data-source-options.js';
import { Sql } from './sql.service.js';

/**
 * Applies pending migrations at start; replicas starting together take turns on a lock. On a
 * pool of its own without the statement timeout: waiting for the lock while another replica
 * migrates, or a migration that rewrites a big table, may take longer than any request should.
 */
@Injectable()
class MigrationRunner implements OnModuleInit {
  private readonly logger = new Logger('Database');

  constructor(
    private readonly config: KilnConfig,
    private readonly outages: DependencyOutages,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.database.migrateOnStart) return;
    const dataSource = await new DataSource({
      ...dataSourceOptions(this.config, { bounded: false }),
      poolErrorHandler: (error: Error) => this.outages.failed('database', error),
    }).initialize();
    try {
      const applied = await withAdvisoryLock(
        dataSource,
        'migrations',
        () => dataSource.runMigrations({ transaction: 'each' }),
        { wait: true },
      );
      for (const migration of applied ?? []) this.logger.log(`Applied migration ${migration.name}`);
    } finally {
      await dataSource.destroy();
    }
  }
}

/**
 * A connection that breaks while idle (PostgreSQL restarted, a network cut) begins an outage; a
 * new connection made means PostgreSQL answers again.
 */
@Injectable()
class PoolWatch implements OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    private readonly outages: DependencyOutages,
  ) {}

  onModuleInit(): void {
    const pool = (this.dataSource.driver as PostgresDriver).master as pg.Pool;
    pool.on('connect', () => this.outages.restored('database'));
    // An ended pool's connections are still closing (pg's end() does not wait for them): a
    // server stopping meanwhile, such as the embedded one right after the app, is no outage.
    pool.on('error', (error) => {
      if (!pool.ending) this.outages.failed('database', error);
    });
  }
}

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [KilnConfig],
      useFactory: (config: KilnConfig) => ({
        ...dataSourceOptions(config),
        // Each room registers its own entities (TypeOrmModule.forFeature); migrations need none.
        autoLoadEntities: true,
        // PoolWatch reports a connection that breaks while idle, instead of TypeORM's warning.
        poolErrorHandler: () => undefined,
        // The process waited for PostgreSQL before it built the application (see main.ts).
        retryAttempts: 0,
      }),
    }),
  ],
  providers: [MigrationRunner, PoolWatch, Sql],
  exports: [Sql],
})
export class DatabaseModule {}
