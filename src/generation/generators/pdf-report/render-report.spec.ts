import { describe, expect, it } from 'vitest';
import { renderReport } from './render-report.js';
import { type DatedReport, reportInput } from './report-input.js';

const report = (sections: unknown[]): DatedReport => ({
  ...reportInput.parse({ title: 'Report', sections }),
  generatedAt: '2026-11-01T08:30:00Z',
});

const paragraph = 'Kiln renders reports from structured input. '.repeat(12);

/** The page objects in the file, and the count its page tree declares. */
function pageCounts(pdf: Buffer): { objects: number; declared: number } {
  const text = pdf.toString('latin1');
  const declared = /\/Type \/Pages\n\/Count (\d+)/.exec(text)?.[1];
  return { objects: text.match(/\/Type \/Page\n/g)?.length ?? 0, declared: Number(declared) };
}

describe('renderReport', () => {
  it('renders a PDF, the same bytes for the same input', async () => {
    const input = report([
      {
        heading: 'Summary',
        paragraphs: [paragraph],
        facts: [{ label: 'Jobs', value: 42 }],
        table: { columns: ['Kind', 'Jobs'], rows: [['music', 3]] },
      },
    ]);
    const first = await renderReport(input);
    const second = await renderReport(structuredClone(input));
    expect(first.data.subarray(0, 5).toString()).toBe('%PDF-');
    expect(first.pages).toBe(1);
    expect(second.data.equals(first.data)).toBe(true);
    const later = await renderReport({ ...input, generatedAt: '2026-11-02T08:30:00Z' });
    expect(later.data.equals(first.data)).toBe(false);
  });

  it('starts a section on a new page when asked', async () => {
    const sections = Array.from({ length: 4 }, (_, index) => ({
      heading: `Part ${index + 1}`,
      paragraphs: ['Short.'],
      newPage: true,
    }));
    const { data, pages } = await renderReport(report(sections));
    expect(pages).toBe(5);
    expect(pageCounts(data)).toEqual({ objects: 5, declared: 5 });
  });

  it('flows long text and tables over as many pages as they need', async () => {
    const rows = Array.from({ length: 300 }, (_, index) => [
      `row ${index}`,
      index,
      index % 2 === 0,
    ]);
    const sections = [
      { heading: 'Text', paragraphs: Array.from({ length: 40 }, () => paragraph) },
      { heading: 'Table', table: { columns: ['Name', 'Value', 'Even'], rows } },
    ];
    const { data, pages } = await renderReport(report(sections));
    // ~40 paragraphs of ~7 lines and ~300 rows of one line: well over ten A4 pages.
    expect(pages).toBeGreaterThan(10);
    expect(pageCounts(data)).toEqual({ objects: pages, declared: pages });
  });

  it('reports progress per section, and ends when aborted midway', async () => {
    const sections = Array.from({ length: 50 }, (_, index) => ({
      heading: `Part ${index + 1}`,
      paragraphs: [paragraph],
    }));
    const controller = new AbortController();
    const fractions: number[] = [];
    const rendering = renderReport(report(sections), {
      signal: controller.signal,
      onProgress: (fraction) => fractions.push(fraction),
    });
    // Aborted from outside, as a cancel or timeout would: only between sections can it be seen.
    const abortOnProgress = async () => {
      while (fractions.length < 3) await new Promise((resolve) => setImmediate(resolve));
      controller.abort(new Error('Cancelled.'));
    };
    await Promise.all([expect(rendering).rejects.toThrow('Cancelled.'), abortOnProgress()]);
    expect(fractions.length).toBeGreaterThanOrEqual(3);
    expect(fractions.length).toBeLessThan(50);
    expect(fractions.slice(0, 3)).toEqual([1 / 50, 2 / 50, 3 / 50]);
  });

  it('sees an abort within a long table as well', async () => {
    const rows = Array.from({ length: 2_000 }, (_, index) => [`row ${index}`, index]);
    const controller = new AbortController();
    const rendering = renderReport(
      report([{ heading: 'Table', table: { columns: ['Name', 'Value'], rows } }]),
      { signal: controller.signal },
    );
    // Queued after the yield before the section: only a yield within the table can see it.
    setImmediate(() => controller.abort(new Error('Timed out.')));
    await expect(rendering).rejects.toThrow('Timed out.');
  });

  it('rejects rows that do not match the columns, and reports too many rows', () => {
    const parsed = reportInput.safeParse({
      title: 'x',
      sections: [{ heading: 'h', table: { columns: ['a', 'b'], rows: [['1']] } }],
    });
    expect(parsed.error?.issues[0]).toMatchObject({
      path: ['sections', 0, 'table', 'rows', 0],
      message: 'Expected 2 cells, one per column; got 1.',
    });
  });
});
