import 'reflect-metadata';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { createCache } from 'cache-manager';
import { loadConfig } from '../src/config/config.js';
import type { GeneratedOutput, Generator } from '../src/generation/generator.js';
import { MusicGenerator } from '../src/generation/generators/music/music.generator.js';
import { parseWavHeader } from '../src/generation/generators/music/wav.js';
import { PdfReportGenerator } from '../src/generation/generators/pdf-report/pdf-report.generator.js';
import { EspeakVoices } from '../src/generation/generators/speech/espeak-voices.js';
import { SpeechGenerator } from '../src/generation/generators/speech/speech.generator.js';

/**
 * How fast the built-in generators work, through the same `generate()` jobs call:
 *   npm run bench:generation      (BENCH_RUNS=5 timed runs of each, after one warm-up)
 * music and speech as a real-time factor (seconds of audio per second of wall time), pdf-report
 * as the time of a 5-page report and pages per second.
 */
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MUSIC_SECONDS = 30;
const PDF_PAGES = 5;
const scratch = mkdtempSync(join(tmpdir(), 'kiln-bench-generation-'));

async function timed(generator: Generator, input: unknown) {
  const parsed: unknown = generator.input.parse(input);
  const run = async () => {
    const started = process.hrtime.bigint();
    const output = await generator.generate(parsed, {
      jobId: 'bench',
      attempt: 1,
      submittedAt: new Date(0),
      signal: new AbortController().signal,
      progress: () => undefined,
      tempDir: () => Promise.resolve(mkdtempSync(join(scratch, 'job-'))),
      logger: new Logger('bench'),
    });
    return { output, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  };
  await run(); // warm-up
  const runs = [];
  for (let index = 0; index < RUNS; index++) runs.push(await run());
  const median = runs.map((entry) => entry.seconds).sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
  return { seconds: median, output: runs[0]!.output };
}

const bytesOf = (output: GeneratedOutput) =>
  'data' in output ? output.data : readFileSync(output.path);
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

const paragraph =
  'Kiln turns slow generation work into a reliable HTTP job API: a client submits a request ' +
  'and gets 202 at once, workers run it with progress, retries and cancellation. ';

/** A report of exactly five pages: a first section, then four that each start a page. */
const report = {
  title: 'Kiln benchmark report',
  subtitle: 'Five pages of text, facts and tables',
  generatedAt: '2026-11-29T00:00:00Z',
  sections: Array.from({ length: PDF_PAGES }, (_, index) => ({
    heading: `Section ${index + 1}`,
    newPage: index > 0,
    paragraphs: [paragraph.repeat(3), paragraph.repeat(2)],
    facts: [
      { label: 'Jobs', value: 1000 * (index + 1) },
      { label: 'Success rate', value: '99.2 %' },
    ],
    table: {
      columns: ['Kind', 'Jobs', 'Mean seconds', 'Cached'],
      rows: Array.from({ length: 20 }, (_, row) => [
        `kind-${row}`,
        row * 37,
        row / 7,
        row % 2 === 0,
      ]),
    },
  })),
};

async function main(): Promise<void> {
  const config = loadConfig({});
  const music = await timed(new MusicGenerator(), {
    prompt: 'upbeat piano with bass, strings and drums',
    duration: MUSIC_SECONDS,
  });
  const speech = await timed(new SpeechGenerator(new EspeakVoices(createCache(), config), config), {
    text: paragraph.repeat(4),
    voice: 'en-us',
  });
  const pdf = await timed(new PdfReportGenerator(), report);
  const pdfBytes = bytesOf(pdf.output);
  const pages = Number(/\/Type \/Pages\n\/Count (\d+)/.exec(pdfBytes.toString('latin1'))?.[1]);
  if (pages !== PDF_PAGES) throw new Error(`The report has ${pages} pages, not ${PDF_PAGES}`);
  const speechSeconds = parseWavHeader(bytesOf(speech.output)).durationSeconds;

  const results = {
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
    runs: RUNS,
    music: {
      audioSeconds: MUSIC_SECONDS,
      wallSeconds: round(music.seconds, 3),
      realTimeFactor: round(MUSIC_SECONDS / music.seconds),
    },
    speech: {
      audioSeconds: round(speechSeconds, 2),
      wallSeconds: round(speech.seconds, 3),
      realTimeFactor: round(speechSeconds / speech.seconds),
    },
    pdfReport: {
      pages,
      milliseconds: round(pdf.seconds * 1000),
      pagesPerSecond: round(pages / pdf.seconds),
    },
    targets: {
      musicAtLeast100TimesRealTime: MUSIC_SECONDS / music.seconds >= 100,
      fivePagePdfWithin50Ms: pdf.seconds <= 0.05,
    },
  };
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('../../bench/results/generation.json', import.meta.url),
    JSON.stringify(results, null, 2),
  );
  console.log(JSON.stringify(results, null, 2));
}

try {
  await main();
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
