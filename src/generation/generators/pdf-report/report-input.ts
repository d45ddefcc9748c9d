import { z } from 'zod';

export const REPORT_LIMITS = {
  sections: 200,
  paragraphsPerSection: 200,
  paragraphChars: 10_000,
  columns: 12,
  rows: 2_000,
  cellChars: 500,
  facts: 50,
  /** Rows across every table of a report. */
  totalRows: 5_000,
} as const;

const cell = z.union([z.string().max(REPORT_LIMITS.cellChars), z.number(), z.boolean(), z.null()]);

const table = z
  .strictObject({
    columns: z.array(z.string().trim().min(1).max(100)).min(1).max(REPORT_LIMITS.columns),
    rows: z.array(z.array(cell)).max(REPORT_LIMITS.rows),
  })
  .superRefine(({ columns, rows }, context) => {
    rows.forEach((row, index) => {
      if (row.length !== columns.length) {
        context.addIssue({
          code: 'custom',
          path: ['rows', index],
          message: `Expected ${columns.length} cells, one per column; got ${row.length}.`,
        });
      }
    });
  });

const section = z.strictObject({
  heading: z.string().trim().min(1).max(200),
  paragraphs: z
    .array(z.string().max(REPORT_LIMITS.paragraphChars))
    .max(REPORT_LIMITS.paragraphsPerSection)
    .default([]),
  // An array, not an object: PostgreSQL's jsonb does not keep the order of an object's keys.
  facts: z
    .array(z.strictObject({ label: z.string().trim().min(1).max(100), value: cell }))
    .max(REPORT_LIMITS.facts)
    .default([]),
  table: table.optional(),
  newPage: z.boolean().default(false).meta({ description: 'Start this section on a new page.' }),
});

export const reportInput = z
  .strictObject({
    title: z.string().trim().min(1).max(200),
    subtitle: z.string().trim().max(300).optional(),
    generatedAt: z.iso
      .datetime({ offset: true })
      .optional()
      .meta({
        description:
          "Shown in the footer and as the creation date; the job's submission time when absent. " +
          'The same input with a generatedAt gives the same bytes.',
      }),
    sections: z.array(section).min(1).max(REPORT_LIMITS.sections),
  })
  .superRefine(({ sections }, context) => {
    const rows = sections.reduce((sum, { table }) => sum + (table?.rows.length ?? 0), 0);
    if (rows > REPORT_LIMITS.totalRows) {
      context.addIssue({
        code: 'custom',
        path: ['sections'],
        message: `At most ${REPORT_LIMITS.totalRows} table rows in all; got ${rows}.`,
      });
    }
  });

export type ReportInput = z.output<typeof reportInput>;
/** A report whose generation time is settled: the input's, else the job's submission time. */
export type DatedReport = ReportInput & { generatedAt: string };
export type ReportCell = z.output<typeof cell>;
