import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { GeneratorRegistry } from '../generation/generator.registry.js';
import { inputJsonSchema } from '../generation/generator.registry.js';
import { openApiComponents } from '../common/openapi.js';

const componentId = (kind: string) =>
  `${kind.replace(/(^|-)([a-z0-9])/g, (_match, _dash: string, letter: string) => letter.toUpperCase())}Input`;

/** Serves the OpenAPI document at /docs (UI) and /docs-json, with every generator's input schema. */
export function setupSwagger(
  app: INestApplication,
  registry: GeneratorRegistry,
  version: string,
): void {
  const config = new DocumentBuilder()
    .setTitle('Kiln')
    .setDescription(
      'Slow generation work as a reliable HTTP job API: submit and get `202` at once, then ' +
        'follow progress, cancel, and download the result. Errors are RFC 9457 problem documents. ' +
        'Every `/api/v1` route takes an API key: `Authorization: Bearer kiln_…`.',
    )
    .setVersion(version)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A Kiln API key (kiln_…)' })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  const schemas: Record<string, unknown> = {
    ...document.components?.schemas,
    ...openApiComponents(),
  };
  const generators = registry.all();
  for (const generator of generators)
    schemas[componentId(generator.kind)] = inputJsonSchema(generator);
  const submit = schemas.SubmitJob as { properties: Record<string, Record<string, unknown>> };
  submit.properties.input = {
    ...submit.properties.input,
    oneOf: generators.map((generator) => ({
      $ref: `#/components/schemas/${componentId(generator.kind)}`,
    })),
  };
  document.components = { ...document.components, schemas: schemas as never };
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
