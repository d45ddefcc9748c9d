import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { sha256Hex } from '../common/canonical-json.js';
import { KilnConfig } from '../config/config.js';
import type { GeneratedOutput } from '../generation/generator.js';
import { Artifact } from './artifact.entity.js';

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** A file stored by content, ready to be recorded with the job that produced it. */
export type StoredArtifact = Pick<Artifact, 'sha256' | 'contentType' | 'extension' | 'sizeBytes'>;

/**
 * Generated files, stored once on disk by content (`ARTIFACT_DIR/ab/abcdef…`). Each has a row in
 * `artifacts`, written in the same statement that completes the job that produced it.
 */
@Injectable()
export class ArtifactStore {
  /** Shard directories known to exist, so a save costs no mkdir. */
  private readonly directories = new Set<string>();

  constructor(
    @InjectRepository(Artifact) private readonly artifacts: Repository<Artifact>,
    private readonly config: KilnConfig,
  ) {}

  pathOf(sha256: string): string {
    return join(this.config.storage.artifactDir, sha256.slice(0, 2), sha256);
  }

  /** Writes beside the target and renames, so a reader never sees a partial file. */
  async store(output: GeneratedOutput): Promise<StoredArtifact> {
    const sha256 = 'data' in output ? sha256Hex(output.data) : await fileSha256(output.path);
    const target = this.pathOf(sha256);
    const directory = dirname(target);
    if (!this.directories.has(directory)) {
      await mkdir(directory, { recursive: true });
      this.directories.add(directory);
    }
    const stored = await stat(target).catch(() => undefined);
    if (stored) {
      // Stored before: same name, same bytes.
      if ('path' in output) await unlink(output.path);
    } else {
      const partial = `${target}.${randomUUID()}.partial`;
      if ('data' in output) await writeFile(partial, output.data);
      else await this.moveInto(output.path, partial);
      await rename(partial, target);
    }
    const sizeBytes = 'data' in output ? output.data.length : (stored ?? (await stat(target))).size;
    return { sha256, contentType: output.contentType, extension: output.extension, sizeBytes };
  }

  find(sha256: string): Promise<Artifact | null> {
    return this.artifacts.findOneBy({ sha256 });
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
