import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import {
  DEFAULT_SCHEMA,
  type Processor,
  createPostgresBackend,
  runMigrations,
  withBackend,
} from 'bullmq';
import pg from 'pg';
import { backoffDelays } from '../common/backoff.js';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { isUnavailable } from '../common/unavailable.js';
import { KilnConfig } from '../config/config.js';
import { databaseUrl, poolOptions } from '../database/data-source-options.js';
import { Sql } from '../database/sql.service.js';
import {
  Backplane,
  type BackplaneQueue,
  type BackplaneWorker,
  type MessageListener,
  type WorkerSettings,
} from './backplane.js';

const { Queue, Worker } = withBackend(createPostgresBackend);

/** NOTIFY refuses a payload of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_999;

/**
 * Queues, workers and messages on PostgreSQL alone: BullMQ's PostgreSQL backend (its tables in
 * the `bullmq` schema, claims by SKIP LOCKED, waits by LISTEN) and LISTEN/NOTIFY for messages.
 * The queues and workers share one pool, kept apart from the application's: a worker holds a
 * connection for its LISTEN, and queue traffic never waits behind a slow request's statements.
 */
@Injectable()
export class PostgresBackplane extends Backplane implements OnApplicationShutdown {
  readonly dependency = 'database';
  private readonly logger = new Logger('Backplane');
  private readonly pool: pg.Pool;
  private readonly queues: BackplaneQueue<unknown>[] = [];
  private schemaReady?: Promise<void>;
  private subscriber?: pg.Client;
  private closing = false;

  constructor(
    private readonly config: KilnConfig,
    private readonly sql: Sql,
    private readonly outages: DependencyOutages,
  ) {
    super();
    this.pool = new pg.Pool({
      ...this.connection(),
      max: config.database.poolSize,
      // BullMQ's statements name its tables unqualified.
      options: `-c search_path=${DEFAULT_SCHEMA}`,
    });
    // A connection that breaks while the pool is closing at shutdown is no outage.
    this.pool.on('error', (error) => {
      if (!this.closing) this.outages.failed('database', error);
    });
  }

  /** PostgreSQL is the backplane: while it is down, so is everything that would use it. */
  get available(): boolean {
    return true;
  }

  /** A queue of the backplane, once BullMQ's schema is in place. */
  async queue(name: string): Promise<BackplaneQueue<unknown>> {
    await this.migrate();
    const queue = new Queue<unknown, void>(name, { connection: this.pool });
    // Other errors are JobQueue's to log.
    queue.on('error', (error) => {
      if (isUnavailable(error)) this.outages.failed('database', error);
    });
    this.queues.push(queue);
    return queue;
  }

  worker<Data>(
    queue: string,
    processor: Processor<Data, void>,
    settings: WorkerSettings,
  ): BackplaneWorker<Data> {
    return new Worker(queue, processor, { ...settings, connection: this.pool });
  }

  async publish(channel: string, message: string): Promise<void> {
    if (Buffer.byteLength(message) > MAX_PAYLOAD_BYTES) {
      this.logger.warn(`A message on ${channel} is too long for NOTIFY; listeners re-read instead`);
      return;
    }
    await this.sql.query('SELECT pg_notify($1, $2)', [channel, message]);
  }

  /** Called once per process, by JobEvents. */
  async subscribe(channels: readonly string[], listener: MessageListener): Promise<void> {
    await this.listen(channels, listener);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    await Promise.all(this.queues.map((queue) => queue.close()));
    await this.subscriber?.end().catch(() => undefined);
    await this.pool.end();
  }

  /**
   * BullMQ's own migrations, before any queue is used, whatever DB_MIGRATE_ON_START says: its
   * schema follows the installed BullMQ, not Kiln's migrations. Idempotent, in one transaction
   * under BullMQ's own advisory lock, so replicas starting together take turns.
   */
  private migrate(): Promise<void> {
    this.schemaReady ??= (async () => {
      const client = await this.pool.connect();
      try {
        await runMigrations(client, DEFAULT_SCHEMA);
      } finally {
        client.release();
      }
    })();
    return this.schemaReady;
  }

  /**
   * One connection of its own LISTENs to every channel; when it breaks (PostgreSQL restarted, a
   * network cut) a new one listens again, after a backoff. Messages sent meanwhile are lost, as
   * on Redis: a cancel is stored in the row too, and a live stream re-reads its job.
   */
  private async listen(channels: readonly string[], listener: MessageListener): Promise<void> {
    const client = new pg.Client(this.connection());
    // Until it listens, a failure is the caller's to handle.
    client.on('error', () => undefined);
    try {
      await client.connect();
      for (const channel of channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    client.on('notification', ({ channel, payload }) => listener(channel, payload ?? ''));
    client.on('error', (error) => {
      this.outages.failed('database', error);
      void this.relisten(client, channels, listener);
    });
    client.on('end', () => void this.relisten(client, channels, listener));
    this.subscriber = client;
  }

  /** Unbounded statements: a worker's wait for jobs and a LISTEN last as long as they need. */
  private connection(): pg.ClientConfig {
    return {
      connectionString: databaseUrl(this.config),
      ...poolOptions(this.config, { bounded: false }),
    };
  }

  private async relisten(
    broken: pg.Client,
    channels: readonly string[],
    listener: MessageListener,
  ): Promise<void> {
    if (this.closing || this.subscriber !== broken) return;
    this.subscriber = undefined;
    await broken.end().catch(() => undefined);
    for (const delay of backoffDelays()) {
      if (this.closing) return;
      try {
        await this.listen(channels, listener);
        return;
      } catch (error) {
        this.outages.failed('database', error);
        await sleep(delay);
      }
    }
  }
}
