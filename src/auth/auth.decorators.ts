import { type ExecutionContext, SetMetadata, createParamDecorator } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Principal } from './principal.js';

export const PUBLIC_ROUTE = 'kiln:public';
export const ADMIN_ROUTE = 'kiln:admin';

/** No API key needed: probes and Prometheus. */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** Admin keys only: a client key gets a 403. */
export const AdminOnly = () => SetMetadata(ADMIN_ROUTE, true);

/** The authenticated caller. */
export const Caller = createParamDecorator((_data: unknown, context: ExecutionContext) => {
  const { principal } = context.switchToHttp().getRequest<FastifyRequest>();
  if (!principal) throw new Error('No principal: is the route @Public()?');
  return principal satisfies Principal;
});
