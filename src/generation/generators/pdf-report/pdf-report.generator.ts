import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import {
  type GeneratedOutput,
  type GenerationContext,
  type Generator,
  KilnGenerator,
} from '../../generator.js';
import { renderReport } from './render-report.js';
import { reportInput } from './report-input.js';

/** A PDF report from structured JSON, rendered with pdfkit; the same input gives the same bytes. */
@Injectable()
@KilnGenerator()
export class PdfReportGenerator implements Generator<typeof reportInput> {
  readonly kind = 'pdf-report';
  readonly version = '1';
  readonly description =
    'A PDF report (title, sections of paragraphs, facts and tables) with page numbers.';
  readonly resources = 'cpu';
  readonly input = reportInput;
  readonly example = {
    title: 'Quarterly report',
    subtitle: 'Kiln usage, third quarter',
    generatedAt: '2026-10-01T09:00:00Z',
    sections: [
      {
        heading: 'Summary',
        paragraphs: ['Jobs grew steadily; failures stayed rare.'],
        facts: [
          { label: 'Jobs', value: 12840 },
          { label: 'Success rate', value: '99.2 %' },
        ],
        table: {
          columns: ['Kind', 'Jobs', 'Mean seconds'],
          rows: [
            ['music', 8210, 3.1],
            ['speech', 4630, 0.8],
          ],
        },
      },
    ],
  };

  async generate(
    input: z.output<typeof reportInput>,
    { signal, progress, submittedAt }: GenerationContext,
  ): Promise<GeneratedOutput> {
    progress('generating', 0);
    // Not filled in at submission: a replay with the same Idempotency-Key must hash the same.
    const generatedAt = input.generatedAt ?? submittedAt.toISOString();
    const { data } = await renderReport(
      { ...input, generatedAt },
      {
        signal,
        onProgress: (fraction) => progress('generating', fraction * 0.95),
      },
    );
    return { data, contentType: 'application/pdf', extension: 'pdf' };
  }
}
