import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { KilnConfig } from '../../../config/config.js';
import type { CommandConfig } from '../../../config/generator-config.js';
import { exitError, runProcess } from '../../../process/child-process.js';
import {
  type Availability,
  type GeneratedOutput,
  type GenerationContext,
  type GenerationStep,
  type Generator,
  type GeneratorFamily,
  KilnGenerator,
} from '../../generator.js';
import { processGroupsDir } from '../../../process/process-groups.js';
import { ConfiguredGenerator } from '../configured.generator.js';

const STEPS: readonly GenerationStep[] = ['loading_model', 'preparing', 'generating', 'saving'];
/** `PROGRESS <0..1> [step]` on its own line of stdout. */
const PROGRESS_LINE = /^PROGRESS\s+(\d*\.?\d+)(?:\s+(\S+))?\s*$/;

interface CommandSettings {
  env: Record<string, string>;
  killGraceMs: number;
  recordDir: string;
}

/**
 * A configured executable (a team's model script), run per job in a process group of its own
 * that dies with the worker: the input as JSON on stdin, `PROGRESS <fraction> <step>` lines on
 * stdout, the result written to the path it is given (`KILN_OUTPUT_PATH`, or `{output}` in its
 * arguments).
 */
export class CommandGenerator extends ConfiguredGenerator {
  constructor(
    kind: string,
    private readonly command: CommandConfig,
    private readonly settings: CommandSettings,
  ) {
    super(kind, command, `Runs the configured command '${kind}'.`);
  }

  async checkAvailability(): Promise<Availability> {
    const { path } = this.command;
    const found = await findExecutable(path, this.environment().PATH ?? '');
    return found
      ? { available: true }
      : { available: false, reason: `'${path}' is not an executable file here` };
  }

  async generate(
    input: unknown,
    { jobId, gpu, signal, progress, tempDir, logger }: GenerationContext,
  ): Promise<GeneratedOutput> {
    const { path, args, contentType, extension } = this.command;
    const directory = await tempDir();
    const output = join(directory, `output.${extension}`);
    progress('preparing');
    const result = await runProcess(path, {
      args: args.map((arg) => arg.replaceAll('{output}', output)),
      cwd: directory,
      env: {
        ...this.environment(gpu),
        KILN_OUTPUT_PATH: output,
        KILN_JOB_ID: jobId,
        KILN_TEMP_DIR: directory,
      },
      stdin: JSON.stringify(input),
      signal,
      killGraceMs: this.settings.killGraceMs,
      recordDir: this.settings.recordDir,
      onStdoutLine: (line) => {
        const match = PROGRESS_LINE.exec(line);
        if (!match) {
          logger.debug?.(line);
          return;
        }
        const step = STEPS.find((known) => known === match[2]) ?? 'generating';
        progress(step, Number(match[1]));
      },
    });
    if (result.code !== 0) throw exitError(path, result);
    if (!(await stat(output).catch(() => undefined))?.isFile())
      throw new Error(`'${path}' exited with code 0 but wrote no file at KILN_OUTPUT_PATH`);
    return { path: output, contentType, extension };
  }

  /**
   * What the command sees: the allowed part of Kiln's environment, the GPU this job was given (as
   * `CUDA_VISIBLE_DEVICES`), then the entry's `env`, which may pin devices itself.
   */
  private environment(gpu?: string): Record<string, string> {
    return {
      ...this.settings.env,
      ...(gpu === undefined ? {} : { CUDA_VISIBLE_DEVICES: gpu }),
      ...this.command.env,
    };
  }
}

/** A path, or a name looked up on PATH as a shell would. */
async function findExecutable(path: string, searchPath: string): Promise<boolean> {
  const candidates = path.includes('/')
    ? [path]
    : searchPath
        .split(delimiter)
        .filter(Boolean)
        .map((directory) => join(directory, path));
  for (const candidate of candidates) {
    const executable = await access(candidate, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (executable && (await stat(candidate)).isFile()) return true;
  }
  return false;
}

/** One generator per COMMAND_GENERATORS entry. */
@Injectable()
@KilnGenerator()
export class CommandGenerators implements GeneratorFamily {
  constructor(private readonly config: KilnConfig) {}

  generators(): Generator[] {
    const { commands, commandEnv, commandKillGraceMs } = this.config.generators;
    const settings: CommandSettings = {
      env: commandEnv,
      killGraceMs: commandKillGraceMs,
      recordDir: processGroupsDir(this.config.storage.tempDir),
    };
    return Object.entries(commands).map(
      ([kind, command]) => new CommandGenerator(kind, command, settings),
    );
  }
}
