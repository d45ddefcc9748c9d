import { Injectable } from '@nestjs/common';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';

/**
 * Hand-written statements on TypeORM's own pg pool. TypeORM's `query()` builds a query runner,
 * broadcasts events and wraps the result on every call, a cost the hot paths notice (figures in
 * bench/NOTES.md).
 *
 * Every statement is prepared once per connection and then only bound and executed, which saves
 * PostgreSQL parsing and planning it on every job. So a statement's text must be fixed (values go in
 * parameters), and it names its columns instead of `*`: a prepared `RETURNING *` would fail in
 * running replicas once a migration adds a column. Transactions and entity reads stay with
 * TypeORM.
 */
@Injectable()
export class Sql {
  /** Statement names by text; pg prepares a name on each connection the first time it runs. */
  private readonly names = new Map<string, string>();

  constructor(private readonly dataSource: DataSource) {}

  async query<T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> {
    let name = this.names.get(text);
    if (name === undefined) {
      name = `kiln-${this.names.size + 1}`;
      this.names.set(text, name);
    }
    return (await this.pool.query({ name, text, values })).rows as T[];
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
