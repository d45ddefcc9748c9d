import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateJobs1764028800000 implements MigrationInterface {
  name = 'CreateJobs1764028800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE artifacts (
        sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        content_type text NOT NULL,
        extension    text NOT NULL,
        size_bytes   bigint NOT NULL CHECK (size_bytes >= 0),
        created_at   timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE jobs (
        id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind                text NOT NULL,
        status              text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
        current_step        text NOT NULL DEFAULT 'queued',
        progress            real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
        input               jsonb NOT NULL,
        input_hash          text NOT NULL,
        generator_version   text NOT NULL,
        priority            smallint NOT NULL DEFAULT 5,
        attempts            integer NOT NULL DEFAULT 0,
        max_attempts        integer NOT NULL CHECK (max_attempts >= 1),
        error               text,
        artifact_sha256     text REFERENCES artifacts (sha256),
        owner_id            text NOT NULL,
        idempotency_key     text,
        batch_id            uuid,
        cancel_requested_at timestamptz,
        -- Milliseconds, as JavaScript dates hold: list cursors compare exactly.
        created_at          timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
        started_at          timestamptz,
        finished_at         timestamptz,
        updated_at          timestamptz NOT NULL DEFAULT now()
      )`);
    // Listing: newest first per owner, keyset-paginated on (created_at, id).
    await queryRunner.query(
      `CREATE INDEX jobs_owner_created_idx ON jobs (owner_id, created_at DESC, id DESC)`,
    );
    await queryRunner.query(`CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC)`);
    // The reconciler and queue stats only look at unfinished jobs: keep that index small.
    await queryRunner.query(
      `CREATE INDEX jobs_unfinished_idx ON jobs (status, created_at) WHERE status IN ('pending', 'processing')`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX jobs_idempotency_uq ON jobs (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
    );
    await queryRunner.query(`CREATE INDEX jobs_input_hash_idx ON jobs (input_hash)`);
    await queryRunner.query(
      `CREATE INDEX jobs_artifact_idx ON jobs (artifact_sha256) WHERE artifact_sha256 IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE jobs`);
    await queryRunner.query(`DROP TABLE artifacts`);
  }
}
