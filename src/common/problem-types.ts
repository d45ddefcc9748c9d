/** What a problem `type` means, and the status it always comes with. */
interface ProblemType {
  status: number;
  /** One line, as the README's table and the OpenAPI document show it. */
  meaning: string;
  /** Also the name of the HTTP layer's own errors (Nest's, Fastify's) of this status. */
  http?: true;
}

/**
 * Every problem `type` Kiln answers with, as `urn:kiln:problem:<code>`. The error constructors,
 * the exception filter and the OpenAPI document take them from here; a spec holds the README's
 * table to it.
 */
export const PROBLEM_TYPES = {
  'bad-request': {
    status: 400,
    http: true,
    meaning:
      'Malformed JSON or invalid UTF-8, an invalid id, parameter, cursor or header, or a request that is not HTTP.',
  },
  unauthorized: {
    status: 401,
    http: true,
    meaning: 'No API key, or an unknown or revoked one; on `/metrics`, a missing or wrong token.',
  },
  forbidden: { status: 403, http: true, meaning: 'A client key on an admin route.' },
  'not-found': {
    status: 404,
    http: true,
    meaning:
      "No such job (another client's answers the same), or no route for the method and path.",
  },
  'method-not-allowed': {
    status: 405,
    http: true,
    meaning: "The HTTP layer's own 405; an unknown method on a known path is a `not-found`.",
  },
  'request-timeout': {
    status: 408,
    meaning: 'The request did not arrive within `HTTP_REQUEST_TIMEOUT`; the connection is closed.',
  },
  'job-finished': {
    status: 409,
    meaning: 'A cancel of a job that has already finished; `jobStatus` names how it ended.',
  },
  'job-not-completed': {
    status: 409,
    meaning: 'The result of a job that is not completed; `jobStatus` names its status.',
  },
  'payload-too-large': { status: 413, http: true, meaning: 'A body over `BODY_LIMIT_BYTES`.' },
  'unsupported-media-type': {
    status: 415,
    http: true,
    meaning:
      'A body that is not `application/json`, or comes with a `Content-Encoding`; `errors` names the header.',
  },
  'validation-failed': {
    status: 422,
    meaning: 'A body that is not valid (an unknown kind included); `errors` points at each field.',
  },
  'idempotency-key-reused': {
    status: 422,
    meaning: 'An `Idempotency-Key` already used for another request; `jobId` names its job.',
  },
  'rate-limited': {
    status: 429,
    meaning: 'Past a rate limit; `Retry-After` and the `RateLimit` headers say when to retry.',
  },
  'too-many-requests': {
    status: 429,
    http: true,
    meaning: "The HTTP layer's own 429, from outside Kiln's rate limits.",
  },
  'request-header-fields-too-large': { status: 431, meaning: 'The request headers are too large.' },
  'internal-error': {
    status: 500,
    meaning: 'An unexpected error; it is logged with the request id.',
  },
  'range-not-satisfiable': {
    status: 416,
    meaning:
      "A download's `Range` starts past the end of the file; `Content-Range: bytes */<size>` gives its size.",
  },
  'artifact-missing': { status: 500, meaning: "A completed job's file is missing from storage." },
  'dependency-unavailable': {
    status: 503,
    meaning:
      'PostgreSQL or Redis is down or not answering (`dependency` names it); retry after `Retry-After`.',
  },
  'generator-unavailable': {
    status: 503,
    meaning: "The kind's generator cannot run now (`kind`, `reason`); retry after `Retry-After`.",
  },
  starting: {
    status: 503,
    meaning: 'Kiln is still starting (the boot gate answers); retry after `Retry-After`.',
  },
} as const satisfies Record<string, ProblemType>;

export type ProblemCode = keyof typeof PROBLEM_TYPES;

/** Any other status of the HTTP layer (an HttpException's, say) is named by its number. */
export type HttpStatusProblemCode = `http-${number}`;

/** The codes of one status, so that a helper for that status takes no other. */
export type ProblemCodeOf<Status extends number> = {
  [Code in ProblemCode]: (typeof PROBLEM_TYPES)[Code]['status'] extends Status ? Code : never;
}[ProblemCode];

export const PROBLEM_CODES = Object.keys(PROBLEM_TYPES) as ProblemCode[];

export const problemType = (code: ProblemCode | HttpStatusProblemCode) =>
  `urn:kiln:problem:${code}`;

const isProblemCode = (code: string): code is ProblemCode => Object.hasOwn(PROBLEM_TYPES, code);

export const statusOf = (code: ProblemCode | HttpStatusProblemCode): number =>
  isProblemCode(code) ? PROBLEM_TYPES[code].status : Number(code.slice('http-'.length));

const HTTP_LAYER_CODES = new Map<number, ProblemCode>(
  PROBLEM_CODES.flatMap((code) => {
    const type: ProblemType = PROBLEM_TYPES[code];
    return type.http ? [[type.status, code]] : [];
  }),
);

/** The code of an error the HTTP layer raised with this status. */
export const httpLayerCode = (status: number): ProblemCode | HttpStatusProblemCode =>
  HTTP_LAYER_CODES.get(status) ?? `http-${status}`;
