import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { isMissingFile } from '../common/fs-errors.js';
import { KilnConfig } from '../config/config.js';

const GB = 1024 ** 3;

export interface DiskSpace {
  path: string;
  freeGb: number;
  freePercent: number;
}

/** Free space of the filesystem holding `path`, or of its nearest existing parent. */
async function diskSpace(path: string): Promise<DiskSpace> {
  for (let at = path; ; at = dirname(at)) {
    try {
      const stats = await statfs(at);
      const free = stats.bavail * stats.bsize;
      return {
        path,
        freeGb: Math.round((free / GB) * 100) / 100,
        freePercent: Math.round((stats.bavail / stats.blocks) * 10_000) / 100,
      };
    } catch (error) {
      if (!isMissingFile(error) || at === dirname(at)) throw error;
    }
  }
}

/** Room left for artifacts and generators' scratch files: a percentage and an absolute floor. */
@Injectable()
export class DiskHealth {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly config: KilnConfig,
  ) {}

  async check() {
    const indicator = this.indicators.check('disk_space');
    const { minFreeDiskPercent, minFreeDiskBytes } = this.config.health;
    const { artifactDir, tempDir } = this.config.storage;
    try {
      const spaces = await Promise.all([diskSpace(artifactDir), diskSpace(tempDir)]);
      const short = spaces.filter(
        (space) => space.freePercent < minFreeDiskPercent || space.freeGb * GB < minFreeDiskBytes,
      );
      const details = {
        artifacts: spaces[0],
        temp: spaces[1],
        minFreePercent: minFreeDiskPercent,
        minFreeGb: Math.round((minFreeDiskBytes / GB) * 100) / 100,
      };
      if (short.length === 0) return indicator.up({ message: 'Enough free disk', details });
      return indicator.down({
        message: `Low disk: ${short.map((space) => `${space.path} has ${space.freeGb} GB (${space.freePercent} %) free`).join('; ')}`,
        details,
      });
    } catch (error) {
      return indicator.down({ message: `Disk space unknown: ${(error as Error).message}` });
    }
  }
}
