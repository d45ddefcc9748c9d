import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Until when the running attempt of a job holds it. The worker renews the lease while the attempt
 * runs; nobody starts the job again before it lapses, so two attempts never run at once.
 */
export class JobLease1764288000000 implements MigrationInterface {
  name = 'JobLease1764288000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE jobs ADD COLUMN lease_expires_at timestamptz`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE jobs DROP COLUMN lease_expires_at`);
  }
}
