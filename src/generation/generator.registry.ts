import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { z } from 'zod';
import type { FieldError } from '../common/problem.js';
import { parseWith } from '../common/validation.js';
import { KilnConfig } from '../config/config.js';
import { KIND_PATTERN } from '../config/generator-config.js';
import { type Generator, type GeneratorFamily, KilnGenerator } from './generator.js';

export interface CatalogEntry {
  kind: string;
  version: string;
  description: string;
  resources: Generator['resources'];
  inputSchema: Record<string, unknown>;
  example: unknown;
}

type ParsedInput =
  | { ok: true; generator: Generator; input: Record<string, unknown> }
  | { ok: false; errors: FieldError[] };

@Injectable()
export class GeneratorRegistry implements OnModuleInit {
  private readonly generators = new Map<string, Generator>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly config: KilnConfig,
  ) {}

  /** Refuses to start on a wiring mistake rather than fail jobs later. */
  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders({ metadataKey: KilnGenerator.KEY })) {
      const provider = wrapper.instance as Generator | GeneratorFamily;
      for (const generator of 'generators' in provider ? provider.generators() : [provider]) {
        if (!KIND_PATTERN.test(generator.kind)) {
          throw new Error(`Generator ${wrapper.name} has an invalid kind '${generator.kind}'`);
        }
        if (this.generators.has(generator.kind)) {
          throw new Error(`Two generators claim the kind '${generator.kind}'`);
        }
        this.generators.set(generator.kind, generator);
      }
    }
    if (this.generators.size === 0) throw new Error('No generator is registered');
    this.refuseUnknownKinds({
      JOB_TIMEOUT_MS_BY_KIND: this.config.worker.timeoutMsByKind,
      MAX_RETRIES_BY_KIND: this.config.jobs.maxAttemptsByKind,
    });
  }

  /** A per-kind setting for a kind nobody registered is a typo that would be silently ignored. */
  private refuseUnknownKinds(settings: Record<string, Record<string, number>>): void {
    for (const [key, byKind] of Object.entries(settings)) {
      const unknown = Object.keys(byKind).filter((kind) => !this.generators.has(kind));
      if (unknown.length > 0) {
        throw new Error(
          `${key} names unknown kind(s) ${unknown.join(', ')}; known: ${this.kinds.join(', ')}`,
        );
      }
    }
  }

  get kinds(): string[] {
    return [...this.generators.keys()].sort();
  }

  all(): Generator[] {
    return this.kinds.map((kind) => this.require(kind));
  }

  require(kind: string): Generator {
    const generator = this.generators.get(kind);
    if (!generator) throw new Error(`No generator for kind '${kind}'`);
    return generator;
  }

  /** Validates a submitted `{ kind, input }`, reporting errors under the pointer `base`. */
  parseInput(kind: string, input: unknown, base = '#'): ParsedInput {
    const generator = this.generators.get(kind);
    if (!generator) {
      return {
        ok: false,
        errors: [
          {
            pointer: `${base}/kind`,
            detail: `Unknown kind '${kind}'. Known kinds: ${this.kinds.join(', ')}.`,
          },
        ],
      };
    }
    const parsed = parseWith(generator.input, input, `${base}/input`);
    if (!parsed.ok) return parsed;
    return { ok: true, generator, input: parsed.value as Record<string, unknown> };
  }

  catalog(): CatalogEntry[] {
    return this.all().map((generator) => ({
      kind: generator.kind,
      version: generator.version,
      description: generator.description,
      resources: generator.resources,
      inputSchema: inputJsonSchema(generator),
      example: generator.example,
    }));
  }
}

export function inputJsonSchema(generator: Generator): Record<string, unknown> {
  return z.toJSONSchema(generator.input, { target: 'openapi-3.0', io: 'input' });
}
