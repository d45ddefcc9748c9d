import type { IQueueBackend, JobProgress, Processor, Queue, Worker, WorkerOptions } from 'bullmq';
import type { Dependency } from '../common/unavailable.js';

/** Kiln's BullMQ queues, one per kind of resources a generator needs. */
export const QUEUE_NAMES = {
  cpu: 'generation-cpu',
  gpu: 'generation-gpu',
} as const;

/**
 * BullMQ types a queue by its backend's connection options, both read and passed back, so no
 * narrower type covers the Redis and the PostgreSQL ones.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyConnection = any;

/** A queue whose jobs carry `Data`, on whichever backplane. */
export type BackplaneQueue<Data> = Queue<
  Data,
  void,
  string,
  Data,
  void,
  string,
  IQueueBackend,
  AnyConnection
>;

/** A worker of a queue whose jobs carry `Data`, on whichever backplane. */
export type BackplaneWorker<Data> = Worker<
  Data,
  void,
  string,
  IQueueBackend,
  JobProgress,
  AnyConnection
>;

/** What a worker is told; the backplane adds its connection. */
export type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix'>;

export type MessageListener = (channel: string, message: string) => void;

/**
 * What connects Kiln's processes: the BullMQ queues (provided under `@nestjs/bullmq`'s queue
 * tokens) with their workers, and best-effort messages between processes. Redis carries them
 * where `REDIS_URL` is set, PostgreSQL itself otherwise.
 */
export abstract class Backplane {
  /** The dependency an outage of the backplane is. */
  abstract readonly dependency: Dependency;

  /** False while the backplane is known to be down: a caller that can do without it skips it. */
  abstract get available(): boolean;

  /** A BullMQ worker on the backplane, with a blocking connection of its own. */
  abstract worker<Data>(
    queue: string,
    processor: Processor<Data, void>,
    settings: WorkerSettings,
  ): BackplaneWorker<Data>;

  /** Sends a message to every process subscribed to the channel; lost if none is. */
  abstract publish(channel: string, message: string): Promise<void>;

  /** Calls `listener` with every message on these channels from now on. */
  abstract subscribe(channels: readonly string[], listener: MessageListener): Promise<void>;
}
