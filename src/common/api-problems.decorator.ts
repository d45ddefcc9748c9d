import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from './problem-details.filter.js';
import { apiRef, problemSchema } from './openapi.js';

/** Documents the problem+json answers a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: 'A problem document (RFC 9457).',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: apiRef(problemSchema) } },
      }),
    ),
  );
}
