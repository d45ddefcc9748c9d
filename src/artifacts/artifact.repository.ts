import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type Repository } from 'typeorm';
import { Sql } from '../database/sql.service.js';
import { Artifact, type StoredArtifact } from './artifact.entity.js';

/** Every statement on `artifacts`. */
@Injectable()
export class ArtifactRepository {
  constructor(
    @InjectRepository(Artifact) private readonly entities: Repository<Artifact>,
    private readonly sql: Sql,
    private readonly dataSource: DataSource,
  ) {}

  /** Inserts the row, or marks it used again if it was last used over `refreshAfterMs` ago. */
  async record(artifact: StoredArtifact, refreshAfterMs: number): Promise<void> {
    await this.sql.query(
      `INSERT INTO artifacts (sha256, content_type, extension, size_bytes) VALUES ($1, $2, $3, $4)
       ON CONFLICT (sha256) DO UPDATE SET last_used_at = now()
       WHERE artifacts.last_used_at < now() - $5 * interval '1 millisecond'`,
      [
        artifact.sha256,
        artifact.contentType,
        artifact.extension,
        artifact.sizeBytes,
        refreshAfterMs,
      ],
    );
  }

  find(sha256: string): Promise<Artifact | null> {
    return this.entities.findOneBy({ sha256 });
  }

  /**
   * Deletes at most `limit` rows no job refers to and unused for `graceMs`, and runs `removed`
   * on them before the deletion commits: if it throws, the rows stay. Rows another transaction
   * holds are skipped.
   */
  deleteUnused(
    limit: number,
    graceMs: number,
    removed: (sha256s: string[]) => Promise<void>,
  ): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const rows = await manager.query<{ sha256: string }[]>(
        `WITH deleted AS (
           DELETE FROM artifacts WHERE sha256 IN (
             SELECT sha256 FROM artifacts a
             WHERE last_used_at < now() - $2 * interval '1 millisecond'
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.artifact_sha256 = a.sha256)
             LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING sha256)
         SELECT sha256 FROM deleted`,
        [limit, graceMs],
      );
      await removed(rows.map((row) => row.sha256));
      return rows.length;
    });
  }
}
