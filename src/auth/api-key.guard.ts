import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { ProblemError } from '../common/problem.js';
import { KilnConfig } from '../config/config.js';
import { ApiKeys } from './api-keys.service.js';
import { ADMIN_ROUTE, PUBLIC_ROUTE } from './auth.decorators.js';
import type { Principal } from './principal.js';

const LOCAL_ADMIN: Principal = {
  keyId: null,
  name: 'auth-disabled',
  role: 'admin',
  ownerId: 'anonymous',
  limits: { perMinute: null, submitPerMinute: null },
};

const unauthorized = (detail: string) =>
  new ProblemError('unauthorized', detail, {
    headers: { 'www-authenticate': 'Bearer realm="kiln"' },
  });

/** `Authorization: Bearer <key>` on every route not marked @Public(); admins only where marked. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeys,
    private readonly config: KilnConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    request.principal = this.config.auth.disabled
      ? LOCAL_ADMIN
      : await this.authenticate(request.headers.authorization);
    if (
      this.reflector.getAllAndOverride<boolean>(ADMIN_ROUTE, targets) &&
      request.principal.role !== 'admin'
    ) {
      throw new ProblemError('forbidden', 'This route needs an admin API key.');
    }
    return true;
  }

  private async authenticate(authorization: string | undefined): Promise<Principal> {
    const key = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!key) throw unauthorized('Send an API key: `Authorization: Bearer kiln_…`.');
    const principal = await this.keys.authenticate(key);
    if (!principal) throw unauthorized('The API key is unknown or revoked.');
    return principal;
  }
}
