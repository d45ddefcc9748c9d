import type { StoredArtifact } from '../../src/artifacts/artifact.entity.js';
import { Artifact } from '../../src/artifacts/artifact.entity.js';
import type { ArtifactRepository } from '../../src/artifacts/artifact.repository.js';

/**
 * ArtifactRepository's rows in memory: what the store records, and reads back. A row recorded
 * again keeps its first `last_used_at`: only cleanup reads it.
 */
export class FakeArtifactRepository implements Pick<ArtifactRepository, 'record' | 'find'> {
  private readonly rows = new Map<string, Artifact>();

  record(artifact: StoredArtifact): Promise<void> {
    if (!this.rows.has(artifact.sha256)) {
      const now = new Date();
      const row = Object.assign(new Artifact(), artifact, { createdAt: now, lastUsedAt: now });
      this.rows.set(artifact.sha256, row);
    }
    return Promise.resolve();
  }

  find(sha256: string): Promise<Artifact | null> {
    const row = this.rows.get(sha256);
    return Promise.resolve(row ? Object.assign(new Artifact(), row) : null);
  }
}
