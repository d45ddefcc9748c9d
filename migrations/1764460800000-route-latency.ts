import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Route latency sketches by the hour for a Kiln without Redis (PostgresLatencyStore): each replica
 * adds its bucket counts every few seconds, and a summary sums the hours it covers. Logged, unlike
 * the rate-limit counters: one statement per replica every 10 s costs little WAL, and the week a
 * summary can cover outlives a crash.
 */
export class RouteLatency1764460800000 implements MigrationInterface {
  name = 'RouteLatency1764460800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE route_latency (
        -- Hours since the Unix epoch.
        hour   integer NOT NULL,
        -- The method and route template: GET /api/v1/jobs/:id
        route  text NOT NULL,
        -- A LatencySketch bucket, and the requests that fell in it.
        bucket integer NOT NULL,
        count  bigint NOT NULL CHECK (count > 0),
        PRIMARY KEY (hour, route, bucket)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE route_latency`);
  }
}
