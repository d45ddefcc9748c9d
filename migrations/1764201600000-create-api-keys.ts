import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateApiKeys1764201600000 implements MigrationInterface {
  name = 'CreateApiKeys1764201600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE api_keys (
        id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name                     text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
        role                     text NOT NULL CHECK (role IN ('admin', 'client')),
        -- sha256 of the key: keys are long and random, so a fast hash is enough; the key itself
        -- is shown once, at creation, and never stored.
        key_hash                 text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
        -- The first characters, so people can tell keys apart in a list.
        key_prefix               text NOT NULL,
        rate_limit_per_minute    integer CHECK (rate_limit_per_minute > 0),
        submit_limit_per_minute  integer CHECK (submit_limit_per_minute > 0),
        created_at               timestamptz NOT NULL DEFAULT now(),
        last_used_at             timestamptz,
        revoked_at               timestamptz
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE api_keys`);
  }
}
