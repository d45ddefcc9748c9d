import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import { DependencyOutages } from '../common/dependency-outages.service.js';
import { settlesWithin } from '../common/timeout.js';
import { KilnConfig } from '../config/config.js';

const QUIT_MS = 2_000;
const COMMAND_TIMEOUT_MS = 5_000;

/** Kiln's Redis connections, all closed at shutdown. */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  /**
   * For commands on the request path: it fails fast while Redis is down instead of
   * queueing commands for ever, so a submit still answers and the reconciler enqueues later.
   * Not auto-pipelined: ioredis copies every script defined on the connection (BullMQ's 64) into
   * each auto-pipeline, and those outlive the young generation: garbage a submission pays for
   * later. The rate limiter batches its own counts.
   */
  readonly client: Redis;
  private readonly connections: Redis[] = [];
  private readonly settings: { url: string; prefix: string };
  private commandsDown = false;

  constructor(
    private readonly config: KilnConfig,
    private readonly outages: DependencyOutages,
  ) {
    if (!config.redis) throw new Error('RedisService needs REDIS_URL');
    this.settings = config.redis;
    this.client = this.open('commands', {
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      // A frozen Redis keeps its connections open and answers nothing.
      commandTimeout: COMMAND_TIMEOUT_MS,
    });
    this.client.on('error', () => (this.commandsDown = true));
    this.client.on('ready', () => (this.commandsDown = false));
  }

  /**
   * False from an error of the command connection until it is ready again: callers that can do
   * without Redis skip it then. Commands sent while it first connects wait for it, as before.
   */
  get available(): boolean {
    return !this.commandsDown;
  }

  /** A connection of its own, for blocking commands (BullMQ workers) or subscriptions. */
  dedicated(name: string): Redis {
    return this.open(name, { maxRetriesPerRequest: null });
  }

  get prefix(): string {
    return this.settings.prefix;
  }

  /** Channel and key names under the configured prefix, so test runs and deployments never mix. */
  key(name: string): string {
    return `${this.settings.prefix}:${name}`;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(
      this.connections.map(async (connection) => {
        // QUIT waits for replies owed; a connection stuck reconnecting is dropped instead.
        if (!(await settlesWithin(connection.quit(), QUIT_MS))) connection.disconnect();
      }),
    );
  }

  private open(name: string, options: RedisOptions) {
    const connection = new Redis(this.settings.url, {
      ...options,
      connectionName: `kiln-${this.config.role}-${name}`,
    });
    // ioredis reconnects by itself: an outage is reported once for all connections and retries.
    connection.on('error', (error: Error) => this.outages.failed('redis', error));
    connection.on('ready', () => this.outages.restored('redis'));
    this.connections.push(connection);
    return connection;
  }
}
