import { z } from 'zod';
import { PROBLEM_CODES, PROBLEM_TYPES, problemType } from './problem-types.js';

/**
 * Request and response shapes are zod schemas registered with an id (`.meta({ id })`):
 * one declaration validates requests, types the code and becomes an OpenAPI component.
 */
export function apiRef(schema: z.ZodType): { $ref: string } {
  const id = z.globalRegistry.get(schema)?.id;
  if (!id) throw new Error('Schema has no id: declare it with .meta({ id })');
  return { $ref: `#/components/schemas/${id}` };
}

export type JsonSchema = Record<string, unknown>;

/** Every registered schema as OpenAPI components. */
export function openApiComponents(): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, {
    target: 'openapi-3.0',
    io: 'input',
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, { $id: _id, ...schema }]) => [id, schema as JsonSchema]),
  );
}

const problemTypes = PROBLEM_CODES.map(
  (code) =>
    `- \`${problemType(code)}\` (${PROBLEM_TYPES[code].status}): ${PROBLEM_TYPES[code].meaning}`,
);

export const problemSchema = z
  .object({
    type: z
      .union([
        z.enum(PROBLEM_CODES.map(problemType)),
        z.string().regex(/^urn:kiln:problem:http-\d{3}$/),
      ])
      .meta({
        description: `One of:\n${problemTypes.join('\n')}\n\nor \`urn:kiln:problem:http-<status>\` for any other status of the HTTP layer.`,
        example: problemType('validation-failed'),
      }),
    title: z.string().meta({ example: 'Unprocessable Entity' }),
    status: z.int().meta({ example: 422 }),
    detail: z.string(),
    instance: z.string().meta({ example: '/api/v1/jobs' }),
    requestId: z.string(),
    errors: z
      .array(
        z.object({
          pointer: z.string().optional().meta({ example: '#/input/duration' }),
          parameter: z.string().optional().meta({ example: 'limit' }),
          detail: z.string(),
        }),
      )
      .optional(),
  })
  .meta({ id: 'Problem', description: 'An RFC 9457 problem document (application/problem+json).' });
