import { createWriteStream } from 'node:fs';
import { extname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type LoggerService } from '@nestjs/common';
import { KilnConfig } from '../../../config/config.js';
import type { ModelServerConfig } from '../../../config/generator-config.js';
import {
  type Availability,
  type GeneratedOutput,
  type GenerationContext,
  type Generator,
  type GeneratorFamily,
  KilnGenerator,
} from '../../generator.js';
import { ConfiguredGenerator } from '../configured.generator.js';
import { NonRetryableError } from '../../../common/non-retryable-error.js';

/** A prediction as Cog describes it; Kiln reads only these fields. */
interface Prediction {
  id: string;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  output?: unknown;
  error?: string | null;
  logs?: string | null;
}

const FINISHED = new Set<Prediction['status']>(['succeeded', 'failed', 'canceled']);
/** Health-check states in which the server will never predict without an operator. */
const BROKEN_STATES = new Set(['SETUP_FAILED', 'DEFUNCT']);
const EXTENSIONS: Record<string, string> = {
  'application/json': 'json',
  'application/pdf': 'pdf',
  'audio/mpeg': 'mp3',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'text/plain': 'txt',
  'video/mp4': 'mp4',
};
const extensionOf = (contentType: string, url?: URL): string =>
  EXTENSIONS[contentType] ??
  (/^\.[a-z0-9]{1,10}$/i
    .exec(extname(url?.pathname ?? ''))?.[0]
    .slice(1)
    .toLowerCase() ||
    'bin');

/** Progress is read from the end of the logs only: Cog sends all of them on every poll. */
const PROGRESS_LOGS_TAIL = 1_000;

/** The last percentage a progress bar (tqdm and the like) wrote to the logs, as 0..1. */
function progressInLogs(logs: string | null | undefined): number | undefined {
  const percent = [...(logs ?? '').slice(-PROGRESS_LOGS_TAIL).matchAll(/(\d{1,3})%/g)].at(-1)?.[1];
  return percent === undefined ? undefined : Math.min(100, Number(percent)) / 100;
}

/** Client errors that mean "not now" (busy, too many requests), not "never": retried. */
const NOT_NOW = new Set([409, 429]);

/** Bound on one JSON answer of the server: a prediction, its logs and a data URI output in it. */
const MAX_ANSWER_BYTES = 64 * 2 ** 20;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** Passes `source` on, failing for good once it is over `limit` bytes. */
async function* bounded(source: AsyncIterable<Buffer>, limit: number, tooLarge: string) {
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    if (total > limit) throw new NonRetryableError(tooLarge);
    yield chunk;
  }
}

async function readText(response: Response, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  if (response.body) {
    const tooLarge = `The answer to ${what} is over ${MAX_ANSWER_BYTES} bytes`;
    for await (const chunk of bounded(Readable.fromWeb(response.body), MAX_ANSWER_BYTES, tooLarge))
      chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString();
}

const NETWORK_PROBLEMS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

/** What went wrong on the way to the server, without its address (which the cause's message has). */
function networkProblem(error: unknown): string {
  const code = ((error as Error).cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return NETWORK_PROBLEMS[code] ?? code;
  return (error as Error).message;
}

/**
 * A model server that speaks Cog's prediction protocol: `PUT /predictions/{id}` with
 * `Prefer: respond-async`, `GET /predictions/{id}` until it ends, and
 * `POST /predictions/{id}/cancel` when the job is aborted or the attempt fails before the end, and
 * for the predictions of earlier attempts before a new one starts. The output (a file URL on an allowed origin, a data URI or any JSON) becomes the artifact.
 */
export class ModelServerGenerator extends ConfiguredGenerator {
  private readonly logger = new Logger('ModelServers');
  /** Where output files may be fetched from: the server itself and the configured origins. */
  private readonly outputOrigins: Set<string>;
  private reportedProblem?: string;

  constructor(
    kind: string,
    private readonly server: ModelServerConfig,
  ) {
    super(kind, server, `Runs a prediction on the model server configured as '${kind}'.`);
    this.outputOrigins = new Set([new URL(server.url).origin, ...server.outputOrigins]);
  }

  /** The reason never names the server (the health report is public); the log does. */
  async checkAvailability(signal: AbortSignal): Promise<Availability> {
    const problem = await this.healthProblem(signal);
    if (problem && problem !== this.reportedProblem)
      this.logger.warn(`'${this.kind}' at ${this.server.url}: ${problem}`);
    this.reportedProblem = problem;
    return problem ? { available: false, reason: problem } : { available: true };
  }

  private async healthProblem(signal: AbortSignal): Promise<string | undefined> {
    try {
      const what = 'GET /health-check';
      const response = await this.request('/health-check', { signal }, what);
      const text = await readText(response, what);
      if (!response.ok) return `model server answered ${response.status} to its health check`;
      const status = (JSON.parse(text || '{}') as { status?: string } | null)?.status;
      if (status && BROKEN_STATES.has(status)) return `model server reports ${status}`;
      return undefined;
    } catch (error) {
      if (error instanceof SyntaxError) return undefined;
      return `model server unreachable: ${networkProblem(error)}`;
    }
  }

  async generate(
    input: unknown,
    { jobId, attempt, signal, progress, tempDir, logger }: GenerationContext,
  ): Promise<GeneratedOutput> {
    progress('preparing');
    // Kiln names each attempt's prediction, so it can cancel one whose creation never answered,
    // and one an attempt whose worker died left running: those of earlier attempts go first (a
    // server answers 404 for one that has ended). An attempt handed back at shutdown cancelled its
    // own before it ran again under its number: a Cog server takes the id of an ended one anew.
    const pathOf = (number: number) => `/predictions/${encodeURIComponent(`${jobId}-${number}`)}`;
    await Promise.all(
      Array.from({ length: attempt - 1 }, (_, index) => this.cancel(pathOf(index + 1), logger)),
    );
    const path = pathOf(attempt);
    let prediction: Prediction;
    try {
      prediction = await this.call(path, signal, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: JSON.stringify({ input }),
      });
      while (!FINISHED.has(prediction.status)) {
        const step = prediction.status === 'starting' ? 'loading_model' : 'generating';
        progress(step, progressInLogs(prediction.logs));
        await sleep(this.server.pollIntervalMs, undefined, { signal });
        prediction = await this.call(path, signal);
      }
    } catch (error) {
      await this.cancel(path, logger);
      throw error;
    }
    if (prediction.status === 'failed')
      throw new Error(`The prediction failed: ${prediction.error ?? 'no error given'}`);
    if (prediction.status === 'canceled')
      throw new Error('The model server cancelled the prediction');
    progress('saving');
    return this.output(prediction.output, signal, tempDir);
  }

  private async output(
    output: unknown,
    signal: AbortSignal,
    tempDir: () => Promise<string>,
  ): Promise<GeneratedOutput> {
    if (typeof output === 'string' && output.startsWith('data:')) {
      const { contentType, data } = decodeDataUri(output);
      if (data.length > this.server.maxOutputBytes) throw new NonRetryableError(this.tooLarge());
      return { data, contentType, extension: extensionOf(contentType) };
    }
    if (typeof output === 'string' && /^(https?:\/\/|\/)/.test(output))
      return this.download(new URL(output, this.server.url), signal, tempDir);
    return {
      data: Buffer.from(JSON.stringify(output ?? null)),
      contentType: 'application/json',
      extension: 'json',
    };
  }

  /** Fetches an output file, following only redirects that stay on allowed origins. */
  private async download(
    url: URL,
    signal: AbortSignal,
    tempDir: () => Promise<string>,
  ): Promise<GeneratedOutput> {
    for (let redirects = 0; ; redirects++) {
      // A model that echoes its input could otherwise make Kiln fetch any address a client names.
      if (!this.outputOrigins.has(url.origin))
        throw new NonRetryableError(
          `The output is on ${url.origin}, which is not among the model server's outputOrigins`,
        );
      const what = `GET of the output on ${url.origin}`;
      const response = await this.request(url, { signal }, what);
      const location = response.headers.get('location');
      if (REDIRECTS.has(response.status) && location && redirects < MAX_REDIRECTS) {
        await response.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        throw new Error(`${what} answered ${response.status}`);
      }
      const contentType = (response.headers.get('content-type') ?? 'application/octet-stream')
        .split(';')[0]!
        .trim();
      const extension = extensionOf(contentType, url);
      const path = join(await tempDir(), `output.${extension}`);
      await pipeline(
        Readable.fromWeb(response.body),
        (source: AsyncIterable<Buffer>) =>
          bounded(source, this.server.maxOutputBytes, this.tooLarge()),
        createWriteStream(path),
      );
      return { path, contentType, extension };
    }
  }

  private tooLarge(): string {
    return `The output is over the model server's maxOutputBytes (${this.server.maxOutputBytes})`;
  }

  /**
   * A JSON call to the server; a refusal of the input is final, any other failure retryable. A
   * busy Cog server answers 409 (one prediction at a time), as it may while it ends the cancelled
   * prediction of an attempt whose worker died.
   */
  private async call(path: string, signal: AbortSignal, init: RequestInit = {}) {
    const what = `${init.method ?? 'GET'} ${path}`;
    const response = await this.request(path, { ...init, signal }, what);
    const text = await readText(response, what);
    if (!response.ok) {
      const message = `${what} answered ${response.status}: ${text.slice(0, 500)}`;
      const final =
        response.status >= 400 && response.status < 500 && !NOT_NOW.has(response.status);
      throw final ? new NonRetryableError(message) : new Error(message);
    }
    return JSON.parse(text) as Prediction;
  }

  /** Best effort: the attempt fails (or was aborted) anyway, and the server may be the cause. */
  private async cancel(path: string, logger: LoggerService): Promise<void> {
    const what = `POST ${path}/cancel`;
    // The job's own signal may have fired: the cancel has only its request timeout.
    await this.request(`${path}/cancel`, { method: 'POST' }, what)
      .then((response) => response.body?.cancel())
      .catch((error: unknown) => {
        logger.warn(`${what} failed: ${networkProblem(error)}`);
      });
  }

  /**
   * `fetch` bounded by the job's signal and by `requestTimeoutMs`, which keeps running while the
   * caller reads the body. Redirects come back as they are, for the caller to check.
   */
  private request(
    target: string | URL,
    init: RequestInit & { signal?: AbortSignal },
    what: string,
  ): Promise<Response> {
    const timeoutMs = this.server.requestTimeoutMs;
    const timeout = new AbortController();
    setTimeout(
      () => timeout.abort(new Error(`${what} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    ).unref();
    const url = typeof target === 'string' ? `${this.server.url}${target}` : target;
    const signals = init.signal ? [init.signal, timeout.signal] : [timeout.signal];
    return fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.any(signals) });
  }
}

function decodeDataUri(uri: string): { contentType: string; data: Buffer } {
  const comma = uri.indexOf(',');
  const meta = uri.slice('data:'.length, comma);
  const payload = uri.slice(comma + 1);
  const base64 = meta.endsWith(';base64');
  return {
    contentType: meta.replace(/;base64$/, '').split(';')[0] || 'text/plain',
    data: base64 ? Buffer.from(payload, 'base64') : Buffer.from(decodeURIComponent(payload)),
  };
}

/** One generator per MODEL_SERVERS entry. */
@Injectable()
@KilnGenerator()
export class ModelServerGenerators implements GeneratorFamily {
  constructor(private readonly config: KilnConfig) {}

  generators(): Generator[] {
    return Object.entries(this.config.generators.modelServers).map(
      ([kind, server]) => new ModelServerGenerator(kind, server),
    );
  }
}
