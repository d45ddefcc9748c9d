import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { sha256Hex } from '../common/canonical-json.js';
import { KilnConfig } from '../config/config.js';
import { ApiKey, type Role } from './api-key.entity.js';
import type { Principal } from './principal.js';

export const KEY_PREFIX = 'kiln_';
const KEY_PATTERN = /^kiln_[\w-]{20,}$/;
const KEY_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** last_used_at is a hint for people: write it at most this often per key. */
const LAST_USED_EVERY_MS = 60_000;
const VERIFIED_MAX = 10_000;

export interface NewApiKey {
  name: string;
  role: Role;
  rateLimitPerMinute?: number | null;
  submitLimitPerMinute?: number | null;
}

/** A request about keys that cannot be met: a bad or taken name. */
export class ApiKeyError extends Error {
  override name = 'ApiKeyError';
}

/** API keys: created with a random secret shown once, verified by hash, revoked for good. */
@Injectable()
export class ApiKeys {
  private readonly logger = new Logger('ApiKeys');
  /** Verified keys by hash, so a request costs no query while the entry is fresh. */
  private readonly verified = new Map<string, { principal: Principal | null; until: number }>();
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly bootstrapHash?: Buffer;

  constructor(
    @InjectRepository(ApiKey) private readonly keys: Repository<ApiKey>,
    private readonly config: KilnConfig,
  ) {
    const { adminApiKey } = config.auth;
    if (adminApiKey) this.bootstrapHash = Buffer.from(sha256Hex(adminApiKey), 'hex');
  }

  /** Returns the key itself once; only its hash is kept. */
  async create(input: NewApiKey): Promise<{ key: string; apiKey: ApiKey }> {
    if (!KEY_NAME_PATTERN.test(input.name)) {
      throw new ApiKeyError(`A key name is 1 to 64 letters, digits, '.', '_' or '-'.`);
    }
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const { identifiers } = await this.keys
      .createQueryBuilder()
      .insert()
      .values({
        name: input.name,
        role: input.role,
        keyHash: sha256Hex(key),
        keyPrefix: key.slice(0, KEY_PREFIX.length + 6),
        rateLimitPerMinute: input.rateLimitPerMinute ?? null,
        submitLimitPerMinute: input.submitLimitPerMinute ?? null,
      })
      .orIgnore()
      .execute();
    const id = (identifiers[0] as { id?: string } | undefined)?.id;
    if (!id) throw new ApiKeyError(`A key named ${input.name} exists already.`);
    return { key, apiKey: await this.keys.findOneByOrFail({ id }) };
  }

  list(): Promise<ApiKey[]> {
    return this.keys.find({ order: { createdAt: 'ASC' } });
  }

  /** Revokes by name or id; returns the key, or null if there is none. */
  async revoke(nameOrId: string): Promise<ApiKey | null> {
    const isId = /^[0-9a-f-]{36}$/i.test(nameOrId);
    await this.keys
      .createQueryBuilder()
      .update()
      .set({ revokedAt: () => 'coalesce(revoked_at, now())' })
      .where(isId ? 'id = :value' : 'name = :value', { value: nameOrId })
      .execute();
    return this.keys.findOneBy(isId ? { id: nameOrId } : { name: nameOrId });
  }

  /** The caller a bearer key names, or null when it is unknown or revoked. */
  async authenticate(key: string): Promise<Principal | null> {
    if (!KEY_PATTERN.test(key)) return null;
    const hash = sha256Hex(key);
    if (this.bootstrapHash && timingSafeEqual(Buffer.from(hash, 'hex'), this.bootstrapHash)) {
      return {
        keyId: null,
        name: 'bootstrap-admin',
        role: 'admin',
        ownerId: 'admin',
        limits: { perMinute: null, submitPerMinute: null },
      };
    }
    const cached = this.verified.get(hash);
    if (cached && cached.until > Date.now()) return cached.principal;
    const apiKey = await this.keys.findOneBy({ keyHash: hash });
    const principal =
      apiKey && !apiKey.revokedAt
        ? {
            keyId: apiKey.id,
            name: apiKey.name,
            role: apiKey.role,
            ownerId: apiKey.id,
            limits: {
              perMinute: apiKey.rateLimitPerMinute,
              submitPerMinute: apiKey.submitLimitPerMinute,
            },
          }
        : null;
    if (this.config.auth.cacheMs > 0) {
      // Bounded: a flood of made-up keys must not grow it without end.
      if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
      this.verified.set(hash, { principal, until: Date.now() + this.config.auth.cacheMs });
    }
    if (principal?.keyId) this.touch(principal.keyId);
    return principal;
  }

  private touch(id: string): void {
    const now = Date.now();
    if (now - (this.lastUsedWritten.get(id) ?? 0) < LAST_USED_EVERY_MS) return;
    this.lastUsedWritten.set(id, now);
    this.keys
      .update({ id }, { lastUsedAt: () => 'now()' })
      .catch((error: Error) => this.logger.warn(`Could not record key use: ${error.message}`));
  }
}
