import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When an artifact was last produced. Cleanup removes an unreferenced artifact only once this is
 * old, so a worker that has just stored a file is never robbed of it before its job completes.
 */
export class ArtifactLastUsed1764115200000 implements MigrationInterface {
  name = 'ArtifactLastUsed1764115200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE artifacts ADD COLUMN last_used_at timestamptz NOT NULL DEFAULT now()`,
    );
    await queryRunner.query(`CREATE INDEX artifacts_last_used_idx ON artifacts (last_used_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE artifacts DROP COLUMN last_used_at`);
  }
}
