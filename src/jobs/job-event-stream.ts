import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type JobEvent, type JobEvents, jobEvent } from './job-events.service.js';
import { FINAL_STATUSES, type Job } from './job.entity.js';

const HEARTBEAT_MS = 15_000;

export interface JobEventSource {
  events: JobEvents;
  /** The job as the caller may see it, read again. */
  read: () => Promise<Job>;
  resyncMs: number;
}

/**
 * One job's server-sent events (`event: update`): its state, then each change, live over
 * JobEvents and re-read every `resyncMs` in case a message was lost. It ends after the final
 * state, when the client leaves, or when this process starts shutting down.
 */
export class JobEventStream {
  private sent = { updatedAt: '', data: '' };
  private timers: NodeJS.Timeout[] = [];
  private unwatch = () => {};
  private stopOnClosing = () => {};

  private constructor(
    private readonly raw: ServerResponse,
    private readonly source: JobEventSource,
  ) {}

  /** Takes the response over from Fastify and streams until the end; resolves once it has begun. */
  static async open(
    id: string,
    request: FastifyRequest,
    reply: FastifyReply,
    source: JobEventSource,
  ): Promise<void> {
    const raw = reply.hijack().raw;
    raw.writeHead(200, {
      // What hooks set so far (security, CORS, request id, rate limits): the raw response skips them.
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const stream = new JobEventStream(raw, source);
    stream.stopOnClosing = source.events.onClosing(stream.close);
    request.raw.on('close', stream.close);
    // Watch first, then read: only an update already in flight can fall between the two.
    stream.unwatch = await source.events.watch(id, stream.send);
    if (raw.writableEnded) return stream.unwatch();
    stream.timers = [
      setInterval(() => raw.write(': keep-alive\n\n'), HEARTBEAT_MS),
      setInterval(() => void stream.reread(), source.resyncMs),
    ];
    await stream.reread();
  }

  private readonly close = () => {
    for (const timer of this.timers) clearInterval(timer);
    this.unwatch();
    this.stopOnClosing();
    this.raw.end();
  };

  private readonly send = (event: JobEvent) => {
    const { raw, sent } = this;
    const data = JSON.stringify(event);
    // A re-read and a live update may cross: never repeat one, never step back.
    if (raw.writableEnded || data === sent.data || event.updatedAt < sent.updatedAt) return;
    this.sent = { updatedAt: event.updatedAt, data };
    raw.write(`event: update\ndata: ${data}\n\n`);
    if (FINAL_STATUSES.includes(event.status)) this.close();
  };

  private reread(): Promise<void> {
    return this.source.read().then(
      (job) => this.send(jobEvent(job)),
      () => undefined, // the next re-read will do
    );
  }
}
