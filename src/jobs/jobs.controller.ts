import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiOperation,
  ApiProduces,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Caller } from '../auth/auth.decorators.js';
import { type Principal, scopeOf } from '../auth/principal.js';
import { ApiProblems } from '../common/api-problems.decorator.js';
import { apiRef } from '../common/openapi.js';
import { sha256Hex } from '../common/canonical-json.js';
import { byteRange, matchesIfNoneMatch } from '../common/conditional-requests.js';
import { ProblemError, badRequest } from '../common/problem.js';
import { ZodPipe } from '../common/validation.js';
import { KilnConfig } from '../config/config.js';
import { Submits } from '../rate-limit/submit-cost.decorator.js';
import { JobEventStream } from './job-event-stream.js';
import { JobEvents } from './job-events.service.js';
import {
  type JobView,
  batchViewSchema,
  jobIdSchema,
  jobPageSchema,
  jobViewSchema,
  listJobsQuerySchema,
  submitBatchSchema,
  submitJobSchema,
  toJobView,
  type ListJobsQuery,
} from './job.dto.js';
import { JobsService } from './jobs.service.js';

const idPipe = new ZodPipe(jobIdSchema);
/** A batch counts as its jobs against the submit limit (at least 1, however malformed). */
const jobsInBatch = (body: unknown) => {
  const jobs = (body as { jobs?: unknown } | undefined)?.jobs;
  return Array.isArray(jobs) ? Math.max(1, jobs.length) : 1;
};
const idempotencyKeySchema = z.string().min(1).max(255);

@ApiBearerAuth()
@ApiProblems(401, 429)
@ApiTags('jobs')
@Controller('jobs')
export class JobsController {
  constructor(
    private readonly jobs: JobsService,
    private readonly events: JobEvents,
    private readonly config: KilnConfig,
  ) {}

  @Post()
  @Submits()
  @ApiOperation({
    summary: 'Submit a job',
    description: 'Answers `202` at once; follow `Location` or the `events` link for progress.',
  })
  @ApiBody({ schema: apiRef(submitJobSchema) })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Repeat a submission safely: the same key and body return the original job (`200`).',
  })
  @ApiResponse({ status: 202, description: 'Accepted', schema: apiRef(jobViewSchema) })
  @ApiResponse({
    status: 200,
    description: 'Seen before (Idempotency-Key)',
    schema: apiRef(jobViewSchema),
  })
  @ApiProblems(400, 413, 415, 422)
  async submit(
    @Caller() caller: Principal,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobView> {
    if (idempotencyKey !== undefined && !idempotencyKeySchema.safeParse(idempotencyKey).success) {
      throw badRequest('Invalid Idempotency-Key.', [
        { parameter: 'Idempotency-Key', detail: 'Must be 1 to 255 characters.' },
      ]);
    }
    const { job, created } = await this.jobs.submit(body, caller.ownerId, idempotencyKey);
    const view = toJobView(job);
    void reply.status(created ? 202 : 200).header('location', view.links.self);
    return view;
  }

  @Post('batch')
  @Submits(jobsInBatch)
  @HttpCode(202)
  @ApiOperation({
    summary: 'Submit several jobs at once',
    description: 'All items are validated first; one invalid item rejects the whole batch.',
  })
  @ApiBody({ schema: apiRef(submitBatchSchema) })
  @ApiResponse({ status: 202, schema: apiRef(batchViewSchema) })
  @ApiProblems(400, 413, 415, 422)
  async submitBatch(
    @Caller() caller: Principal,
    @Body(new ZodPipe(submitBatchSchema)) body: z.output<typeof submitBatchSchema>,
  ): Promise<{ batchId: string; jobs: JobView[] }> {
    const { batchId, jobs } = await this.jobs.submitBatch(body.jobs, caller.ownerId);
    return { batchId, jobs: jobs.map(toJobView) };
  }

  @Get()
  @ApiOperation({ summary: 'List jobs, newest first' })
  @ApiResponse({ status: 200, schema: apiRef(jobPageSchema) })
  @ApiProblems(400)
  async list(
    @Caller() caller: Principal,
    @Query(new ZodPipe(listJobsQuerySchema)) query: ListJobsQuery,
  ): Promise<{ items: JobView[]; nextCursor: string | null }> {
    const page = await this.jobs.list(query, scopeOf(caller));
    return { items: page.items.map(toJobView), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({
    summary: 'A job: status, step, progress, attempts, timings, error, links',
    description:
      'With a weak `ETag` of the view: a poll that sends it back in `If-None-Match` gets `304` ' +
      'while nothing changed.',
  })
  @ApiResponse({ status: 200, schema: apiRef(jobViewSchema) })
  @ApiResponse({ status: 304, description: 'Not modified (If-None-Match)' })
  @ApiProblems(400, 404)
  async get(
    @Caller() caller: Principal,
    @Param('id', idPipe) id: string,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobView | undefined> {
    const view = toJobView(await this.jobs.get(id, scopeOf(caller)));
    // Of the whole view, so that any change a client can see gives another tag.
    const etag = `W/"${sha256Hex(JSON.stringify(view)).slice(0, 32)}"`;
    // Kept, but asked again each time: no-store would keep a browser from revalidating.
    void reply.header('etag', etag).header('cache-control', 'private, no-cache');
    if (!matchesIfNoneMatch(request.headers['if-none-match'], etag)) return view;
    void reply.status(304);
    return undefined;
  }

  @Delete(':id')
  @ApiOperation({
    summary: 'Cancel a job',
    description:
      'A pending job is cancelled at once (`200`); a running one is stopped by its worker (`202`, ' +
      'then `cancelled`); a finished one is a `409`.',
  })
  @ApiResponse({ status: 200, description: 'Cancelled', schema: apiRef(jobViewSchema) })
  @ApiResponse({ status: 202, description: 'Cancel requested', schema: apiRef(jobViewSchema) })
  @ApiProblems(400, 404, 409)
  async cancel(
    @Caller() caller: Principal,
    @Param('id', idPipe) id: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobView> {
    const { job, immediate } = await this.jobs.cancel(id, scopeOf(caller));
    void reply.status(immediate ? 200 : 202);
    return toJobView(job);
  }

  @Get(':id/result')
  @ApiOperation({
    summary: "Download a completed job's output",
    description:
      'One byte range may be asked for (`Range`, `If-Range` with the ETag), so audio can be seeked ' +
      'and a broken download resumed; the ETag is the sha256 of the file.',
  })
  @ApiProduces('application/octet-stream')
  @ApiResponse({ status: 200, description: 'The file, with its own content type' })
  @ApiResponse({ status: 206, description: 'The asked range (`Content-Range`)' })
  @ApiResponse({ status: 304, description: 'Not modified (If-None-Match)' })
  @ApiProblems(400, 404, 409, 416)
  async result(
    @Caller() caller: Principal,
    @Param('id', idPipe) id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const { job, artifact, path } = await this.jobs.result(id, scopeOf(caller));
    const etag = `"${artifact.sha256}"`;
    void reply
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('cache-control', 'private, max-age=31536000, immutable');
    if (matchesIfNoneMatch(request.headers['if-none-match'], etag)) {
      await reply.status(304).send();
      return;
    }
    const size = artifact.sizeBytes;
    const ifRange = request.headers['if-range'];
    const range = byteRange(size, etag, {
      range: request.headers.range,
      ifRange: typeof ifRange === 'string' ? ifRange : undefined,
    });
    if (range.kind === 'unsatisfiable') {
      throw new ProblemError(
        'range-not-satisfiable',
        `The file of job ${id} has ${size} bytes; the range asked for starts past its end.`,
        { headers: { 'content-range': `bytes */${size}` } },
      );
    }
    await access(path).catch(() => {
      throw new ProblemError('artifact-missing', `The file of job ${id} is missing from storage.`);
    });
    void reply
      .type(artifact.contentType)
      .header(
        'content-disposition',
        `attachment; filename="${job.kind}-${job.id}.${artifact.extension}"`,
      );
    if (range.kind === 'whole') {
      await reply.header('content-length', size).send(createReadStream(path));
      return;
    }
    const { start, end } = range;
    await reply
      .status(206)
      .header('content-range', `bytes ${start}-${end}/${size}`)
      .header('content-length', end - start + 1)
      .send(createReadStream(path, { start, end }));
  }

  @Get(':id/events')
  @ApiOperation({
    summary: 'Live updates (server-sent events)',
    description:
      'Sends the current state, then an `update` event per step or progress change; ' +
      'the stream ends after the final state.',
  })
  @ApiProduces('text/event-stream')
  @ApiProblems(400, 404)
  async stream(
    @Caller() caller: Principal,
    @Param('id', idPipe) id: string,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    await this.jobs.get(id, scopeOf(caller));
    await JobEventStream.open(id, request, reply, {
      events: this.events,
      read: () => this.jobs.get(id, scopeOf(caller)),
      resyncMs: this.config.jobs.eventsResyncMs,
    });
  }
}
