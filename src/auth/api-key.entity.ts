import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const ROLES = ['admin', 'client'] as const;
export type Role = (typeof ROLES)[number];

/** A caller's credential: only its hash is stored; the key is shown once, at creation. */
@Entity('api_keys')
export class ApiKey {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column('text')
  name!: string;

  @Column('text')
  role!: Role;

  @Column('text', { name: 'key_hash', select: false })
  keyHash!: string;

  @Column('text', { name: 'key_prefix' })
  keyPrefix!: string;

  @Column('integer', { name: 'rate_limit_per_minute', nullable: true })
  rateLimitPerMinute!: number | null;

  @Column('integer', { name: 'submit_limit_per_minute', nullable: true })
  submitLimitPerMinute!: number | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'last_used_at', nullable: true })
  lastUsedAt!: Date | null;

  @Column('timestamptz', { name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;
}
