import type { Role } from './api-key.entity.js';

/** Who is calling, as the guard found out; jobs belong to `ownerId`. */
export interface Principal {
  /** The API key's id; null for the bootstrap admin key or with auth disabled. */
  keyId: string | null;
  name: string;
  role: Role;
  ownerId: string;
  /** Per-key rate-limit overrides. */
  limits: { perMinute: number | null; submitPerMinute: number | null };
}

/** Which jobs a caller may see: its own, or every job for an admin. */
export interface OwnerScope {
  ownerId: string;
  all: boolean;
}

export const scopeOf = (principal: Principal): OwnerScope => ({
  ownerId: principal.ownerId,
  all: principal.role === 'admin',
});

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
