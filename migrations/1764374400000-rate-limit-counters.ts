import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rate-limit counters for a Kiln without Redis (PostgresThrottlerStorage), and the function that
 * counts a batch of requests in one call with the rules of the Redis script: a request is admitted
 * if every one of its weights fits under its key's limit, and then counted in all of them.
 *
 * UNLOGGED: a counter is written by every request and lives one window (a second, a minute). They
 * cost no WAL, and a crash that empties the table only gives callers a fresh window.
 */
export class RateLimitCounters1764374400000 implements MigrationInterface {
  name = 'RateLimitCounters1764374400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE UNLOGGED TABLE rate_limit_counters (
        key        text PRIMARY KEY,
        used       integer NOT NULL,
        -- The window lapses then; a counter past it counts as zero until a request opens another.
        expires_at timestamptz NOT NULL
      )`);
    // Answers, per request, the k counts after it and the 1-based index of its refusal (0: none),
    // then the milliseconds left in each key's window. Generic plans: for array arguments the
    // custom ones look cheaper, so each call was planned anew (bench/NOTES.md).
    await queryRunner.query(`
      CREATE FUNCTION rate_limit_hit(keys text[], ttls_ms integer[], limits integer[], weights integer[])
      RETURNS integer[] LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
      DECLARE
        k constant integer := cardinality(keys);
        n constant integer := cardinality(weights) / k;
        counted integer[];
        counted_before integer[];
        left_ms integer[];
        reply integer[] := '{}';
        refused integer;
      BEGIN
        -- Locks the batch's counters, in key order so that two batches never wait for each other in
        -- a cycle; DO UPDATE locks a row that WHERE false then leaves unwritten. A counter nobody
        -- had is created lapsed.
        INSERT INTO rate_limit_counters AS c (key, used, expires_at)
        SELECT key, 0, now() FROM unnest(keys) AS key ORDER BY key
        ON CONFLICT (key) DO UPDATE SET used = c.used WHERE false;

        SELECT array_agg(CASE WHEN c.expires_at > now() THEN c.used ELSE 0 END ORDER BY t.i),
               array_agg(CASE WHEN c.expires_at > now()
                              THEN ceil(extract(epoch FROM c.expires_at - now()) * 1000)::integer
                              ELSE t.ttl_ms END ORDER BY t.i)
          INTO counted, left_ms
          FROM unnest(keys, ttls_ms) WITH ORDINALITY AS t(key, ttl_ms, i)
          JOIN rate_limit_counters c ON c.key = t.key;
        counted_before := counted;

        FOR r IN 0 .. n - 1 LOOP
          refused := 0;
          FOR i IN 1 .. k LOOP
            IF counted[i] + weights[r * k + i] > limits[i] THEN
              refused := i;
              EXIT;
            END IF;
          END LOOP;
          FOR i IN 1 .. k LOOP
            IF refused = 0 THEN
              counted[i] := counted[i] + weights[r * k + i];
            END IF;
            reply := reply || counted[i];
          END LOOP;
          reply := reply || refused;
        END LOOP;

        -- A window opens with the first request counted in it.
        UPDATE rate_limit_counters c
           SET used = t.counted,
               expires_at = CASE WHEN c.expires_at > now() THEN c.expires_at
                                 ELSE now() + t.ttl_ms * interval '1 millisecond' END
          FROM unnest(keys, counted, counted_before, ttls_ms) AS t(key, counted, counted_before, ttl_ms)
         WHERE c.key = t.key AND t.counted > t.counted_before;
        RETURN reply || left_ms;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP FUNCTION rate_limit_hit(text[], integer[], integer[], integer[])`,
    );
    await queryRunner.query(`DROP TABLE rate_limit_counters`);
  }
}
