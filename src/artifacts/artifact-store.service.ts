import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Injectable } from '@nestjs/common';
import { sha256Hex } from '../common/canonical-json.js';
import { isMissingFile } from '../common/fs-errors.js';
import { KilnConfig } from '../config/config.js';
import type { GeneratedOutput } from '../generation/generator.js';
import type { Artifact, StoredArtifact } from './artifact.entity.js';
import { ArtifactRepository } from './artifact.repository.js';

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** An artifact no job refers to stays this long after it was last stored (a job may be about to). */
const UNUSED_GRACE_MS = 3_600_000;
const REFRESH_AFTER_MS = 60_000;
const REMEMBERED_MAX = 10_000;

/**
 * Generated files, stored once on disk by content (`ARTIFACT_DIR/ab/abcdef…`), each with a row in
 * `artifacts` that the jobs producing it refer to. Cleanup removes both once no job does.
 */
@Injectable()
export class ArtifactStore {
  /** Shard directories known to exist, so a save costs no mkdir. */
  private readonly directories = new Set<string>();
  /** When this process last recorded each recent artifact's row and saw its file, oldest first. */
  private readonly stored = new Map<string, number>();

  constructor(
    private readonly artifacts: ArtifactRepository,
    private readonly config: KilnConfig,
  ) {}

  pathOf(sha256: string): string {
    return join(this.config.storage.artifactDir, sha256.slice(0, 2), sha256);
  }

  /**
   * Records the artifact, then writes it beside the target and renames, so a reader never sees
   * a partial file. The row comes first: cleanup deletes a row and its file in one transaction,
   * so once the row is (re)written here the file check below cannot race a deletion. Content
   * this process stored less than a minute ago costs nothing: cleanup spares it for an hour.
   */
  async store(output: GeneratedOutput): Promise<StoredArtifact> {
    const sha256 = 'data' in output ? sha256Hex(output.data) : await fileSha256(output.path);
    const size = 'data' in output ? output.data.length : (await stat(output.path)).size;
    const stored = {
      sha256,
      contentType: output.contentType,
      extension: output.extension,
      sizeBytes: size,
    };
    if (this.storedRecently(sha256)) {
      if ('path' in output) await unlink(output.path);
      return stored;
    }
    // Inserts the row, or marks it used again if it is older than a minute.
    await this.artifacts.record(stored, REFRESH_AFTER_MS);
    const target = this.pathOf(sha256);
    const directory = dirname(target);
    if (!this.directories.has(directory)) {
      await mkdir(directory, { recursive: true });
      this.directories.add(directory);
    }
    if (await stat(target).catch(() => undefined)) {
      // Stored before: same name, same bytes.
      if ('path' in output) await unlink(output.path);
    } else {
      const partial = `${target}.${randomUUID()}.partial`;
      if ('data' in output) await writeFile(partial, output.data);
      else await this.moveInto(output.path, partial);
      await rename(partial, target);
    }
    this.remember(sha256);
    return stored;
  }

  private storedRecently(sha256: string): boolean {
    const storedAt = this.stored.get(sha256);
    return storedAt !== undefined && Date.now() - storedAt < REFRESH_AFTER_MS;
  }

  private remember(sha256: string): void {
    this.stored.delete(sha256);
    this.stored.set(sha256, Date.now());
    if (this.stored.size > REMEMBERED_MAX) this.stored.delete(this.stored.keys().next().value!);
  }

  find(sha256: string): Promise<Artifact | null> {
    return this.artifacts.find(sha256);
  }

  /**
   * Removes up to `limit` artifacts no job refers to, rows and files in one transaction: a worker
   * storing the same content waits on the row lock until the file is gone, then writes both
   * afresh. A file that cannot be removed rolls its batch back for the next run; a row without
   * its file is harmless (store() rewrites it).
   */
  removeUnused(limit: number): Promise<number> {
    return this.artifacts.deleteUnused(limit, UNUSED_GRACE_MS, async (sha256s) => {
      const results = await Promise.allSettled(
        sha256s.map((sha256) => unlink(this.pathOf(sha256))),
      );
      const failures = results.flatMap((result) =>
        result.status === 'rejected' && !isMissingFile(result.reason)
          ? [result.reason as Error]
          : [],
      );
      if (failures.length > 0) {
        throw new Error(
          `Could not remove ${failures.length} artifact file(s): ${failures[0]?.message}`,
        );
      }
    });
  }

  private async moveInto(source: string, target: string): Promise<void> {
    try {
      await rename(source, target);
    } catch (error) {
      // The temp dir may sit on another filesystem than the artifacts.
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      await copyFile(source, target);
      await unlink(source);
    }
  }
}
