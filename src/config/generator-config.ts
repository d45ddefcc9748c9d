import { resolve } from 'node:path';
import { z } from 'zod';

/** Lowercase words joined by dashes: the shape of every kind. */
export const KIND_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** A JSON value in one environment key, checked against `schema`. */
const json = <S extends z.ZodType>(schema: S) =>
  z
    .string()
    .transform((text, context): unknown => {
      try {
        return JSON.parse(text);
      } catch (error) {
        context.addIssue({ code: 'custom', message: `not JSON: ${(error as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** A JSON Schema of an object, turned into the zod schema that validates requests against it. */
const inputSchema = z
  .looseObject({ type: z.literal('object') })
  .transform((schema, context): z.ZodType => {
    try {
      return z.fromJSONSchema(schema);
    } catch (error) {
      context.addIssue({
        code: 'custom',
        message: `unusable JSON Schema: ${(error as Error).message}`,
      });
      return z.NEVER;
    }
  });

/** What every configured generator says about itself in the catalog. */
const describedGenerator = {
  description: z.string().max(500).optional(),
  /** Bump it when the same input would now give other bytes (part of the input hash). */
  version: z.string().min(1).max(50).default('1'),
  resources: z.enum(['cpu', 'gpu']).default('cpu'),
  /** The input's JSON Schema (`type: object`); any object when absent. */
  input: inputSchema.optional(),
  example: z.record(z.string(), z.unknown()).default({}),
};

const commandEntry = z.strictObject({
  ...describedGenerator,
  /**
   * The executable: a path, or a name on PATH. A relative path is taken from Kiln's working
   * directory now, since the command runs in its job's temp dir. Never taken from a request.
   */
  path: z
    .string()
    .min(1)
    .transform((path) => (path.includes('/') ? resolve(path) : path)),
  /** Its arguments; `{output}` is replaced by the path it must write its result to. */
  args: z.array(z.string()).default([]),
  /** Variables added to the few it inherits (PATH, HOME, locale, CUDA_* and the like). */
  env: z.record(z.string(), z.string()).default({}),
  contentType: z.string().min(1).default('application/octet-stream'),
  extension: z
    .string()
    .regex(/^[a-z0-9]{1,10}$/)
    .default('bin'),
});

/** `https://bucket.s3.amazonaws.com`: a scheme, a host and maybe a port, nothing more. */
const origin = z
  .url({ protocol: /^https?$/ })
  .refine((url) => new URL(url).origin === url.replace(/\/$/, ''), 'expected an origin only')
  .transform((url) => new URL(url).origin);

const modelServerEntry = z.strictObject({
  ...describedGenerator,
  /** Base URL of a server that speaks Cog's prediction protocol. Never taken from a request. */
  url: z.url({ protocol: /^https?$/ }).transform((url) => url.replace(/\/+$/, '')),
  pollIntervalMs: z.int().min(10).default(500),
  /** Bound on each HTTP request, its body included (the prediction has JOB_TIMEOUT_MS). */
  requestTimeoutMs: z.int().min(100).default(10_000),
  /** Origins besides the server's own that output URLs may point at (a bucket it uploads to). */
  outputOrigins: z.array(origin).default([]),
  /** Bound on an output file, and on the decoded bytes of a data URI output. */
  maxOutputBytes: z
    .int()
    .min(1)
    .default(2 ** 30),
});

const byKind = <S extends z.ZodType>(entry: S) =>
  json(z.record(z.string().regex(KIND_PATTERN, 'expected a kind such as my-model'), entry));

/** `{"upscale": {"path": "/opt/models/upscale.py", "resources": "gpu"}}`: each key a kind. */
export const commandGenerators = byKind(commandEntry);
/** `{"caption": {"url": "http://models:5000", "resources": "gpu"}}`: each key a kind. */
export const modelServers = byKind(modelServerEntry);

/** The fields every configured generator has, whatever runs it. */
export type DescribedGeneratorConfig = z.output<z.ZodObject<typeof describedGenerator>>;
export type CommandConfig = z.output<typeof commandEntry>;
export type ModelServerConfig = z.output<typeof modelServerEntry>;
