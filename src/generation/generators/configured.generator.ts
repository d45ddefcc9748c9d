import { z } from 'zod';
import type { DescribedGeneratorConfig } from '../../config/generator-config.js';
import type { GeneratedOutput, GenerationContext, Generator, Resources } from '../generator.js';

const anyObject = z
  .record(z.string(), z.unknown())
  .meta({ description: 'Passed to the model as it is; its configuration gives no schema.' });

/** A generator made from a configuration entry (a command, a model server): its key is its kind. */
export abstract class ConfiguredGenerator implements Generator {
  readonly version: string;
  readonly description: string;
  readonly resources: Resources;
  readonly input: z.ZodType;
  readonly example: Record<string, unknown>;

  protected constructor(
    readonly kind: string,
    entry: DescribedGeneratorConfig,
    description: string,
  ) {
    this.version = entry.version;
    this.description = entry.description ?? description;
    this.resources = entry.resources;
    this.input = entry.input ?? anyObject;
    this.example = entry.example;
  }

  abstract generate(input: unknown, context: GenerationContext): Promise<GeneratedOutput>;
}
