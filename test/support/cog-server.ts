import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

interface Prediction {
  id: string;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  input: {
    mode?:
      | 'ok'
      | 'fail'
      | 'hang'
      | 'stall'
      | 'data-uri'
      | 'json'
      | 'echo'
      | 'slow-create'
      | 'poll-error'
      | 'chatty'
      | 'stall-output';
    text?: string;
  };
  output?: unknown;
  error?: string;
  logs: string;
  polls: number;
}

const ended = (prediction: Prediction) =>
  ['succeeded', 'failed', 'canceled'].includes(prediction.status);

/**
 * A small model server that follows Cog's prediction protocol: async predictions, named by the
 * client, that a scripted `mode` in the input completes (a file URL, a data URI, JSON or the text
 * itself), fails, leaves running until cancelled, or stops answering about. Files it serves can
 * redirect (`/files/redirect?to=…`) or stall midway (`?stall`).
 */
export class CogServer {
  readonly predictions = new Map<string, Prediction>();
  /** Every request, as `METHOD /path`, in order. */
  readonly requests: string[] = [];
  /** Answer every request with this status instead (a server in trouble). */
  failWith?: number;
  /** What `GET /health-check` reports. */
  health = 'READY';

  private constructor(private readonly server: Server) {}

  get url(): string {
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  static async start(): Promise<CogServer> {
    const cog: CogServer = new CogServer(
      createServer((request, response) => void cog.handle(request, response)),
    );
    cog.server.listen(0, '127.0.0.1');
    await once(cog.server, 'listening');
    return cog;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown, type = 'application/json') => {
      response.writeHead(status, { 'content-type': type });
      response.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    let body = '';
    for await (const chunk of request) body += String(chunk);
    const url = request.url ?? '/';
    this.requests.push(`${request.method} ${url}`);
    if (this.failWith) return send(this.failWith, { detail: 'model server is overloaded' });
    if (request.method === 'GET' && url === '/health-check')
      return send(200, { status: this.health });
    if (request.method === 'GET' && url.startsWith('/files/')) return this.file(url, response);
    const match = /^\/predictions\/([^/]+)(\/cancel)?$/.exec(url);
    if (request.method === 'PUT' && match && !match[2]) {
      if (request.headers.prefer !== 'respond-async') return send(400, { detail: 'sync only' });
      return this.create(match[1]!, body, send);
    }
    const prediction = match && this.predictions.get(match[1]!);
    if (!prediction) return send(404, { detail: 'not found' });
    if (request.method === 'POST' && match[2]) {
      // Cog cancels only the prediction it is running.
      if (ended(prediction)) return send(404, { detail: 'not running' });
      prediction.status = 'canceled';
      return send(200, prediction);
    }
    if (prediction.input.mode === 'poll-error') return send(500, { detail: 'out of memory' });
    // A server that stops answering mid-prediction.
    if (prediction.input.mode === 'stall') await sleep(1_000);
    this.advance(prediction);
    return send(200, prediction);
  }

  /**
   * `PUT /predictions/{id}`: starts the prediction, or answers the one of that id again while it
   * runs; as Cog forgets a prediction that has ended, its id starts a new one.
   */
  private async create(
    id: string,
    body: string,
    send: (status: number, body: unknown) => void,
  ): Promise<void> {
    const known = this.predictions.get(id);
    if (known && !ended(known)) return send(202, known);
    const { input } = JSON.parse(body) as { input: Prediction['input'] };
    if (typeof input.text !== 'string') return send(422, { detail: 'input.text: field required' });
    const prediction: Prediction = { id, status: 'starting', input, logs: '', polls: 0 };
    this.predictions.set(id, prediction);
    // Started, but the answer is slow to come (a busy server, a slow network).
    if (input.mode === 'slow-create') await sleep(2_000);
    send(202, prediction);
  }

  private file(path: string, response: ServerResponse): void {
    const url = new URL(path, this.url);
    const to = url.searchParams.get('to');
    if (to) {
      response.writeHead(302, { location: to });
      response.end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain' });
    const text = `spoken: ${decodeURIComponent(url.pathname.slice(7))}`;
    // Headers and half the file, then nothing more.
    if (url.searchParams.has('stall')) response.write(text.slice(0, text.length / 2));
    else response.end(text);
  }

  /** Each poll moves a prediction on: starting, then processing with a progress bar, then done. */
  private advance(prediction: Prediction): void {
    if (prediction.status !== 'starting' && prediction.status !== 'processing') return;
    prediction.polls++;
    prediction.status = 'processing';
    prediction.logs += `${Math.min(100, prediction.polls * 25)}%|###|\n`;
    // A model that prints more than any answer should carry.
    if (prediction.input.mode === 'chatty') prediction.logs += '.'.repeat(65 * 2 ** 20);
    if (prediction.polls < 4 || prediction.input.mode === 'hang') return;
    if (prediction.input.mode === 'fail') {
      prediction.status = 'failed';
      prediction.error = 'RuntimeError: weights not found';
      return;
    }
    prediction.status = 'succeeded';
    const text = prediction.input.text ?? '';
    if (prediction.input.mode === 'data-uri')
      prediction.output = `data:audio/wav;base64,${Buffer.from(text).toString('base64')}`;
    else if (prediction.input.mode === 'json') prediction.output = { caption: text, score: 0.9 };
    // A model that echoes its input: a client names the output URL.
    else if (prediction.input.mode === 'echo') prediction.output = text;
    else {
      const stall = prediction.input.mode === 'stall-output' ? '?stall' : '';
      prediction.output = `${this.url}/files/${encodeURIComponent(text)}.txt${stall}`;
    }
  }
}
