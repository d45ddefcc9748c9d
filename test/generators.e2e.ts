import { describe, expect, it } from 'vitest';
import { parseWavHeader } from '../src/generation/generators/music/wav.js';
import { useKiln } from './support/kiln.js';

interface CatalogEntry {
  kind: string;
  resources: string;
  inputSchema: { properties: Record<string, unknown> };
  availability: { available: boolean; reason?: string };
}

const kiln = useKiln();

async function download(kind: string, input: Record<string, unknown>) {
  const { body } = await kiln.submit(kind, input);
  const done = await kiln.waitForStatus(body.id, 'completed');
  const response = await kiln.fetch(done.links.result!);
  return {
    contentType: response.headers.get('content-type'),
    data: Buffer.from(await response.arrayBuffer()),
  };
}

describe('speech', () => {
  it('speaks text into a WAV of plausible length with non-silent samples', async () => {
    const text = 'Kiln turns slow generation work into a reliable job API. '.repeat(3);
    const words = text.trim().split(/\s+/).length;
    const { contentType, data } = await download('speech', { text, voice: 'en-us', speed: 175 });
    expect(contentType).toBe('audio/wav');
    const header = parseWavHeader(data);
    expect(header).toMatchObject({ channels: 1, bitsPerSample: 16 });
    // At 175 words a minute, give or take the pauses espeak-ng makes.
    const expected = (words / 175) * 60;
    expect(header.durationSeconds).toBeGreaterThan(expected * 0.5);
    expect(header.durationSeconds).toBeLessThan(expected * 2);
    const samples = new Int16Array(data.buffer, data.byteOffset + 44, header.dataBytes / 2);
    const loud = samples.filter((sample) => Math.abs(sample) > 1_000).length;
    expect(loud / samples.length).toBeGreaterThan(0.05);
  });

  it('lists the installed voices and variants', async () => {
    const { status, body } = await kiln.request<{
      voices: { language: string; otherLanguages: string[] }[];
      variants: string[];
    }>('GET', '/generators/speech/voices');
    expect(status).toBe(200);
    expect(body.voices.map((voice) => voice.language)).toContain('en-us');
    expect(body.variants).toContain('f3');
  });

  it('refuses a voice that is not installed', async () => {
    const { status, body } = await kiln.request<{ errors: { pointer: string; detail: string }[] }>(
      'POST',
      '/jobs',
      { kind: 'speech', input: { text: 'hello', voice: 'en-us+nosuchvariant' } },
    );
    expect(status).toBe(422);
    expect(body.errors).toEqual([
      {
        pointer: '#/input/voice',
        detail: 'Not an installed voice; GET /api/v1/generators/speech/voices lists them.',
      },
    ]);
  });

  it('refuses text over the limit', async () => {
    const { status, body } = await kiln.request<{ errors: { pointer: string }[] }>(
      'POST',
      '/jobs',
      {
        kind: 'speech',
        input: { text: 'a'.repeat(5_001) },
      },
    );
    expect(status).toBe(422);
    expect(body.errors[0]?.pointer).toBe('#/input/text');
  });
});

describe('pdf-report', () => {
  const report = {
    title: 'Quarterly report',
    generatedAt: '2026-11-01T08:30:00Z',
    sections: [
      { heading: 'Summary', paragraphs: ['All well.'], facts: [{ label: 'Jobs', value: 3 }] },
      ...['Music', 'Speech', 'Reports', 'Models'].map((heading) => ({
        heading,
        newPage: true,
        table: { columns: ['Day', 'Jobs'], rows: [['Monday', 1]] },
      })),
    ],
  };

  it('renders the same PDF bytes for the same input, one page per new-page section', async () => {
    const first = await download('pdf-report', report);
    const second = await download('pdf-report', { ...report, title: 'Quarterly report ' });
    expect(first.contentType).toBe('application/pdf');
    expect(first.data.subarray(0, 5).toString()).toBe('%PDF-');
    expect(first.data.toString('latin1')).toMatch(/\/Type \/Pages\n\/Count 5\n/);
    // The title is trimmed: the same input, the same bytes.
    expect(second.data.equals(first.data)).toBe(true);
  });

  it('dates a report without generatedAt by its submission, and replays it idempotently', async () => {
    const undated = { title: 'Now', sections: [{ heading: 'x' }] };
    const key = { 'idempotency-key': 'undated-report' };
    const first = await kiln.request('POST', '/jobs', { kind: 'pdf-report', input: undated }, key);
    expect(first.status).toBe(202);
    const replay = await kiln.request('POST', '/jobs', { kind: 'pdf-report', input: undated }, key);
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(first.body.id);

    const job = await kiln.waitForStatus(first.body.id, 'completed');
    const pdf = Buffer.from(await (await kiln.fetch(job.links.result!)).arrayBuffer());
    // pdfkit writes the creation date as (D:YYYYMMDDHHmmssZ).
    const created = job.createdAt.replace(/[-:T]/g, '').slice(0, 14);
    expect(pdf.toString('latin1')).toContain(`(D:${created}Z)`);
  });
});

describe('catalog', () => {
  it('lists each kind with its input schema and availability', async () => {
    const { body } = await kiln.request<CatalogEntry[]>('GET', '/generators');
    const byKind = new Map(body.map((entry) => [entry.kind, entry]));
    expect(byKind.get('speech')).toMatchObject({
      resources: 'cpu',
      availability: { available: true },
    });
    expect(byKind.get('speech')?.inputSchema.properties).toHaveProperty('voice');
    expect(byKind.get('pdf-report')?.inputSchema.properties).toHaveProperty('sections');
    const document = (await (await kiln.fetch('/docs-json')).json()) as {
      paths: object;
      components: { schemas: object };
    };
    expect(document.components.schemas).toHaveProperty('SpeechInput');
    expect(document.components.schemas).toHaveProperty('PdfReportInput');
    expect(document.paths).toHaveProperty(['/api/v1/generators/speech/voices']);
  });
});

describe('a generator whose binary is missing', () => {
  const bare = useKiln({ ESPEAK_NG_PATH: '/nonexistent/espeak-ng' });

  it('is shown unavailable, degrades health, and its jobs are refused with a 503', async () => {
    const { body: catalog } = await bare.request<CatalogEntry[]>('GET', '/generators');
    const speech = catalog.find((entry) => entry.kind === 'speech');
    expect(speech?.availability.available).toBe(false);
    expect(speech?.availability.reason).toContain("'/nonexistent/espeak-ng' was not found");

    const health = (await (await bare.fetch('/health')).json()) as {
      checks: { generators: { status: string; message: string } };
    };
    expect(health.checks.generators.status).toBe('degraded');
    expect(health.checks.generators.message).toContain('speech');

    const refused = await bare.request<{ type: string; kind: string }>('POST', '/jobs', {
      kind: 'speech',
      input: { text: 'hello' },
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(refused.body).toMatchObject({
      type: 'urn:kiln:problem:generator-unavailable',
      kind: 'speech',
    });
    expect((await bare.request('GET', '/generators/speech/voices')).status).toBe(503);
    expect(
      (await bare.submit('pdf-report', { title: 't', sections: [{ heading: 'h' }] })).status,
    ).toBe(202);
  });
});
