import { setImmediate as nextTurn } from 'node:timers/promises';
import PDFDocument from 'pdfkit';
import type { DatedReport, ReportCell, ReportInput } from './report-input.js';

type Table = NonNullable<ReportInput['sections'][number]['table']>;

const MARGIN = 56;
const FOOTER_FONT_SIZE = 8;
const TABLE_FONT_SIZE = 9;
const CELL_PADDING = 4;
const MUTED = '#555555';
const RULE = '#cccccc';
const HEADER_FILL = '#e8e8e8';
/** Rows drawn between two yields to the event loop. */
const ROWS_PER_PAUSE = 50;

const cellText = (value: ReportCell): string =>
  value === null ? '' : typeof value === 'boolean' ? (value ? 'yes' : 'no') : String(value);

export interface RenderOptions {
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

/**
 * An A4 PDF of the report, with page numbers and a generated-at footer. The standard fonts are
 * not embedded and the creation date (hence the file id) comes from the input: the same input
 * gives the same bytes. It yields to the event loop between sections, paragraphs and every
 * ROWS_PER_PAUSE rows, so that a long report neither stalls the process (queue lock renewal,
 * liveness) nor misses an abort.
 */
export async function renderReport(
  report: DatedReport,
  { signal, onProgress }: RenderOptions = {},
): Promise<{ data: Buffer; pages: number }> {
  const generatedAt = new Date(report.generatedAt);
  const doc = new PDFDocument({
    size: 'A4',
    margin: MARGIN,
    bufferPages: true,
    info: {
      Title: report.title,
      ...(report.subtitle ? { Subject: report.subtitle } : {}),
      Creator: 'Kiln',
      Producer: 'Kiln',
      CreationDate: generatedAt,
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  doc.font('Helvetica-Bold').fontSize(22).text(report.title);
  if (report.subtitle) doc.font('Helvetica').fontSize(13).fillColor(MUTED).text(report.subtitle);
  doc.fillColor('black').moveDown(1.5);

  /** Lets timers and I/O run, and ends the rendering here if it was aborted meanwhile. */
  const pause = async () => {
    await nextTurn();
    signal?.throwIfAborted();
  };
  for (const [index, section] of report.sections.entries()) {
    await pause();
    if (section.newPage) doc.addPage();
    doc.font('Helvetica-Bold').fontSize(15).text(section.heading).moveDown(0.4);
    doc.font('Helvetica').fontSize(11);
    for (const [paragraphIndex, paragraph] of section.paragraphs.entries()) {
      if (paragraphIndex > 0) await pause();
      doc.text(paragraph, { align: 'justify', paragraphGap: 6 });
    }
    for (const fact of section.facts) {
      doc.font('Helvetica-Bold').text(`${fact.label}: `, { continued: true });
      doc.font('Helvetica').text(cellText(fact.value));
    }
    if (section.table) await drawTable(doc, section.table, pause);
    doc.moveDown(1);
    onProgress?.((index + 1) / report.sections.length);
  }

  const { count } = doc.bufferedPageRange();
  const footer = `Generated ${generatedAt.toISOString().replace('T', ' ').slice(0, 16)} UTC`;
  for (let page = 0; page < count; page++) {
    doc.switchToPage(page);
    // Writing inside the bottom margin would otherwise start a new page.
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    const y = doc.page.height - MARGIN / 2 - FOOTER_FONT_SIZE;
    const width = doc.page.width - 2 * MARGIN;
    doc.font('Helvetica').fontSize(FOOTER_FONT_SIZE).fillColor(MUTED);
    doc.text(footer, MARGIN, y, { width, lineBreak: false });
    doc.text(`Page ${page + 1} of ${count}`, MARGIN, y, {
      width,
      align: 'right',
      lineBreak: false,
    });
    doc.page.margins.bottom = bottom;
  }
  doc.end();
  return { data: await ended, pages: count };
}

/**
 * Rows of equal-width columns, each as tall as its tallest cell, flowing over pages with the
 * header repeated at the top of each. Drawn by hand: pdfkit's own tables cost ten times as much.
 */
async function drawTable(
  doc: PDFKit.PDFDocument,
  table: Table,
  pause: () => Promise<void>,
): Promise<void> {
  const left = doc.page.margins.left;
  const width = doc.page.width - left - doc.page.margins.right;
  const columnWidth = width / table.columns.length;
  const textWidth = columnWidth - 2 * CELL_PADDING;
  const bottom = () => doc.page.height - doc.page.margins.bottom;
  const heightOf = (cells: string[]) =>
    Math.max(...cells.map((cell) => doc.heightOfString(cell, { width: textWidth }))) +
    2 * CELL_PADDING;
  const drawRow = (cells: string[], y: number, height: number, header: boolean) => {
    if (header) doc.rect(left, y, width, height).fill(HEADER_FILL).fillColor('black');
    doc.font(header ? 'Helvetica-Bold' : 'Helvetica');
    cells.forEach((cell, column) =>
      doc.text(cell, left + column * columnWidth + CELL_PADDING, y + CELL_PADDING, {
        width: textWidth,
      }),
    );
    doc
      .moveTo(left, y + height)
      .lineTo(left + width, y + height)
      .lineWidth(0.5)
      .strokeColor(RULE)
      .stroke();
  };

  doc.moveDown(0.5).fontSize(TABLE_FONT_SIZE);
  doc.font('Helvetica-Bold');
  const headerHeight = heightOf(table.columns);
  let y = doc.y;
  const startPage = () => {
    drawRow(table.columns, y, headerHeight, true);
    y += headerHeight;
  };
  if (y + 2 * headerHeight > bottom()) {
    doc.addPage();
    y = doc.y;
  }
  startPage();
  for (const [index, row] of table.rows.entries()) {
    if (index > 0 && index % ROWS_PER_PAUSE === 0) await pause();
    const cells = row.map(cellText);
    doc.font('Helvetica');
    const height = heightOf(cells);
    if (y + height > bottom()) {
      doc.addPage();
      y = doc.y;
      startPage();
    }
    drawRow(cells, y, height, false);
    y += height;
  }
  doc.font('Helvetica').fontSize(11);
  doc.x = left;
  doc.y = y;
}
