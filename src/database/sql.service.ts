import { Injectable } from '@nestjs/common';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';

/**
 * Hand-written statements on TypeORM's own pg pool. TypeORM's `query()` builds a query runner,
 * broadcasts events and wraps the result on every call: on the submit and worker paths that was
 * a fifth of a no-op job's CPU. Transactions and entity reads stay with TypeORM.
 */
@Injectable()
export class Sql {
  constructor(private readonly dataSource: DataSource) {}

  async query<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]> {
    return (await this.pool.query(text, values)).rows as T[];
  }

  /** For statements that always answer one row, such as an aggregate. */
  async one<T = Record<string, unknown>>(text: string, values?: unknown[]): Promise<T> {
    const [row] = await this.query<T>(text, values);
    if (row === undefined) throw new Error(`Expected a row from: ${text.slice(0, 60)}`);
    return row;
  }

  /** Read at each call: the pool exists once the DataSource is initialized. */
  private get pool(): pg.Pool {
    return (this.dataSource.driver as PostgresDriver).master as pg.Pool;
  }
}
