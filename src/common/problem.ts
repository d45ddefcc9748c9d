import { STATUS_CODES } from 'node:http';
import {
  type HttpStatusProblemCode,
  type ProblemCode,
  type ProblemCodeOf,
  problemType,
  statusOf,
} from './problem-types.js';
import { DEPENDENCY_NAMES, type Dependency } from './unavailable.js';

/** Where a validation error points: a JSON pointer into the body, or a named query/path/header parameter. */
export type FieldError =
  { pointer: string; detail: string } | { parameter: string; detail: string };

export interface ProblemOptions {
  errors?: FieldError[];
  headers?: Record<string, string>;
  /** Extension members added to the problem document (RFC 9457 §3.2). */
  extensions?: Record<string, unknown>;
}

/**
 * A domain error that the global filter renders as `application/problem+json`.
 * `code` names the problem for machines (its status is the catalogue's); `detail` explains this
 * occurrence for people.
 */
export class ProblemError extends Error {
  readonly status: number;

  constructor(
    readonly code: ProblemCode | HttpStatusProblemCode,
    readonly detail: string,
    readonly options: ProblemOptions = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.status = statusOf(code);
  }

  get type(): string {
    return problemType(this.code);
  }

  get title(): string {
    return STATUS_CODES[this.status] ?? 'Error';
  }

  /** The RFC 9457 document, for the request at `instance`. */
  document(instance: string, requestId: string): Record<string, unknown> {
    return {
      type: this.type,
      title: this.title,
      status: this.status,
      detail: this.detail,
      instance,
      requestId,
      ...this.options.extensions,
      ...(this.options.errors ? { errors: this.options.errors } : {}),
    };
  }
}

export const badRequest = (detail: string, errors?: FieldError[]) =>
  new ProblemError('bad-request', detail, { errors });

export const validationFailed = (errors: FieldError[]) =>
  new ProblemError('validation-failed', 'The request is not valid; see `errors`.', { errors });

export const notFound = (detail: string) => new ProblemError('not-found', detail);

export const conflict = (
  code: ProblemCodeOf<409>,
  detail: string,
  extensions?: Record<string, unknown>,
) => new ProblemError(code, detail, { extensions });

/** Seconds a client is asked to wait before it retries a request that met an outage. */
export const OUTAGE_RETRY_AFTER_S = 5;

/** PostgreSQL or Redis is down or not answering: the request may succeed once it is back. */
export const dependencyUnavailable = (dependency: Dependency) =>
  new ProblemError(
    'dependency-unavailable',
    `${DEPENDENCY_NAMES[dependency]} is unavailable; retry in a few seconds.`,
    {
      headers: { 'retry-after': String(OUTAGE_RETRY_AFTER_S) },
      extensions: { dependency },
    },
  );
