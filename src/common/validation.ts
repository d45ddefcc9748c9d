import type { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { type FieldError, badRequest, validationFailed } from './problem.js';

type Parsed<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** JSON pointer (RFC 6901) of a path below `base`, e.g. `#/jobs/2/input/duration`. */
export function pointer(base: string, path: readonly PropertyKey[]): string {
  const escaped = path.map((key) => String(key).replaceAll('~', '~0').replaceAll('/', '~1'));
  return [base, ...escaped].join('/');
}

function issueErrors(issue: z.core.$ZodIssue, base: string): FieldError[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      pointer: pointer(base, [...issue.path, key]),
      detail: 'Unknown field.',
    }));
  }
  return [{ pointer: pointer(base, issue.path), detail: issue.message }];
}

/** Validates `value` and reports each problem as a field error under the pointer `base`. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  base = '#',
): Parsed<z.output<S>> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, errors: result.error.issues.flatMap((issue) => issueErrors(issue, base)) };
}

/**
 * Validates a request part: a body failing its schema is a 422 with JSON pointers,
 * a query or path parameter a 400 naming the parameter.
 */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown, metadata: ArgumentMetadata): z.output<S> {
    const parsed = parseWith(this.schema, value);
    if (parsed.ok) return parsed.value;
    if (metadata.type === 'body') throw validationFailed(parsed.errors);
    const errors = parsed.errors.map((error) => ({
      parameter: 'pointer' in error ? (error.pointer.split('/')[1] ?? metadata.data ?? '') : '',
      detail: error.detail,
    }));
    throw badRequest(
      `Invalid ${metadata.type === 'param' ? 'path' : metadata.type} parameters; see \`errors\`.`,
      errors,
    );
  }
}
