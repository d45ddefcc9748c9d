import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { KilnConfig } from '../config/config.js';
import { killOrphanedGroups, processGroupsDir } from '../process/process-groups.js';

/** At a worker's start, kills the commands a dead predecessor on this host left running. */
@Injectable()
export class OrphanedProcessGroups implements OnModuleInit {
  private readonly logger = new Logger('ProcessGroups');

  constructor(private readonly config: KilnConfig) {}

  /** Before the worker takes a job: those commands may still hold this host's GPUs. */
  async onModuleInit(): Promise<void> {
    if (!this.config.runsWorker) return;
    const killed = await killOrphanedGroups(processGroupsDir(this.config.storage.tempDir));
    if (killed > 0)
      this.logger.warn(`Killed ${killed} process group(s) left running by a worker that died`);
  }
}
