import { STATUS_CODES } from 'node:http';

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
 * `code` names the problem for machines; `detail` explains this occurrence for people.
 */
export class ProblemError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly options: ProblemOptions = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
  }

  get title(): string {
    return STATUS_CODES[this.status] ?? 'Error';
  }
}

export const badRequest = (detail: string, errors?: FieldError[]) =>
  new ProblemError(400, 'bad-request', detail, { errors });

export const validationFailed = (errors: FieldError[]) =>
  new ProblemError(422, 'validation-failed', 'The request is not valid; see `errors`.', { errors });

export const notFound = (detail: string) => new ProblemError(404, 'not-found', detail);

export const conflict = (code: string, detail: string, extensions?: Record<string, unknown>) =>
  new ProblemError(409, code, detail, { extensions });
