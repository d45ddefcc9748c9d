import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, copyFile, mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { sha256Hex } from '../common/canonical-json.js';
import { KilnConfig } from '../config/config.js';
import type { GeneratedOutput } from '../generation/generator.js';
import { Artifact } from './artifact.entity.js';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Generated files, stored once on disk by content (`ARTIFACT_DIR/ab/abcdef…`) with a row each. */
@Injectable()
export class ArtifactStore {
  constructor(
    @InjectRepository(Artifact) private readonly artifacts: Repository<Artifact>,
    private readonly config: KilnConfig,
  ) {}

  pathOf(sha256: string): string {
    return join(this.config.storage.artifactDir, sha256.slice(0, 2), sha256);
  }

  async save(output: GeneratedOutput): Promise<Artifact> {
    const sha256 = 'data' in output ? sha256Hex(output.data) : await fileSha256(output.path);
    const target = this.pathOf(sha256);
    if (await exists(target)) {
      if ('path' in output) await unlink(output.path);
    } else {
      await mkdir(dirname(target), { recursive: true });
      // Write beside the target and rename, so a reader never sees a partial file.
      const partial = `${target}.${randomUUID()}.partial`;
      if ('data' in output) await writeFile(partial, output.data);
      else await this.moveInto(output.path, partial);
      await rename(partial, target);
    }
    const sizeBytes = 'data' in output ? output.data.length : (await stat(target)).size;
    const artifact = this.artifacts.create({
      sha256,
      contentType: output.contentType,
      extension: output.extension,
      sizeBytes,
    });
    await this.artifacts
      .createQueryBuilder()
      .insert()
      .values(artifact)
      .orIgnore()
      .updateEntity(false)
      .execute();
    return artifact;
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
