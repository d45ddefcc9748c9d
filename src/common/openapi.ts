import { z } from 'zod';

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

export const problemSchema = z
  .object({
    type: z.string().meta({ example: 'urn:kiln:problem:validation-failed' }),
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
