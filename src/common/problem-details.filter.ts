import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DependencyOutages } from './dependency-outages.service.js';
import { ProblemError, dependencyUnavailable } from './problem.js';
import { httpLayerCode } from './problem-types.js';
import { unavailableDependency } from './unavailable.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Fastify's own errors (bad JSON, body too large, wrong media type) carry a 4xx statusCode. */
function isClientError(error: unknown): error is Error & { statusCode: number } {
  return (
    error instanceof Error &&
    'statusCode' in error &&
    typeof error.statusCode === 'number' &&
    error.statusCode >= 400 &&
    error.statusCode < 500
  );
}

/** Fastify's own 415 names no header. */
const UNSUPPORTED_MEDIA_TYPE = new ProblemError(
  'unsupported-media-type',
  'Request bodies are JSON.',
  {
    errors: [{ parameter: 'Content-Type', detail: 'Must be application/json.' }],
  },
);

function httpExceptionDetail(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : exception.message;
}

/** Turns every error into an RFC 9457 problem document; nothing else reaches the client. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  constructor(private readonly outages: DependencyOutages) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const dependency = unavailableDependency(exception);
    // An outage is logged once for all the requests it fails, not with a stack for each.
    if (dependency) this.outages.failed(dependency, exception);
    const problem = dependency ? dependencyUnavailable(dependency) : this.toProblem(exception);
    const { status } = problem;
    // A ProblemError is a deliberate answer (a generator unavailable); anything else is a bug.
    if (status >= 500 && !dependency && !(exception instanceof ProblemError)) {
      this.logger.error(
        `${request.method} ${request.url} failed [${request.id}]`,
        exception instanceof Error ? exception.stack : String(exception),
      );
    }
    void reply
      .status(status)
      .headers(problem.options.headers ?? {})
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem.document(request.url, request.id));
  }

  private toProblem(exception: unknown): ProblemError {
    if (exception instanceof ProblemError) return exception;
    const status =
      exception instanceof HttpException
        ? exception.getStatus()
        : isClientError(exception)
          ? exception.statusCode
          : 500;
    if (status === 415) return UNSUPPORTED_MEDIA_TYPE;
    if (exception instanceof HttpException) {
      return new ProblemError(httpLayerCode(status), httpExceptionDetail(exception));
    }
    if (isClientError(exception)) {
      return new ProblemError(httpLayerCode(status), exception.message);
    }
    return new ProblemError('internal-error', 'An unexpected error occurred; it has been logged.');
  }
}
