import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from './problem-details.filter.js';
import { apiRef, problemSchema } from './openapi.js';
import { PROBLEM_CODES, PROBLEM_TYPES, problemType } from './problem-types.js';

/** The problem types a response of this status may carry, as the catalogue lists them. */
function typesOf(status: number): string {
  const types = PROBLEM_CODES.filter((code) => PROBLEM_TYPES[code].status === status);
  if (types.length === 0) throw new Error(`No problem type has status ${status}: add it first.`);
  return types.map((code) => `\`${problemType(code)}\``).join(' or ');
}

/** Documents the problem+json answers a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: `A problem document (RFC 9457): ${typesOf(status)}.`,
        content: { [PROBLEM_CONTENT_TYPE]: { schema: apiRef(problemSchema) } },
      }),
    ),
  );
}
