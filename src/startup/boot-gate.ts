import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { requestId } from '../http/http-edges.js';
import { OUTAGE_RETRY_AFTER_S, ProblemError, dependencyUnavailable } from '../common/problem.js';
import { PROBLEM_CONTENT_TYPE } from '../common/problem-details.filter.js';
import type { Dependency } from '../common/unavailable.js';

const STARTING = new ProblemError('starting', 'Kiln is starting; retry in a few seconds.', {
  headers: { 'retry-after': String(OUTAGE_RETRY_AFTER_S) },
});

/**
 * The port, open from the first moment while the process waits for PostgreSQL and Redis and
 * builds the application: liveness answers 200, readiness 503 with what is still missing, every
 * other route a 503 problem document with Retry-After. Closed just before the application listens
 * on the same port.
 */
export class BootGate {
  private readonly waitingFor: Set<Dependency>;

  private constructor(
    private readonly server: Server,
    dependencies: readonly Dependency[],
  ) {
    this.waitingFor = new Set(dependencies);
  }

  static async open(
    host: string,
    port: number,
    dependencies: readonly Dependency[],
  ): Promise<BootGate> {
    const server = createServer((request, response) => gate.answer(request, response));
    const gate = new BootGate(server, dependencies);
    gate.server.listen(port, host);
    await once(gate.server, 'listening');
    return gate;
  }

  /** The port it listens on: the configured one, or the one chosen for PORT=0. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  answered(dependency: Dependency): void {
    this.waitingFor.delete(dependency);
  }

  async close(): Promise<void> {
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/health/live') {
      this.send(response, 200, 'application/json', { status: 'ok' });
    } else if (path === '/health/ready' || path === '/health') {
      this.send(response, 503, 'application/json', {
        status: 'starting',
        waitingFor: [...this.waitingFor],
      });
    } else {
      const [missing] = this.waitingFor;
      const problem = missing ? dependencyUnavailable(missing) : STARTING;
      // The caller's X-Request-Id only when it is safe, as once the application answers.
      const id = requestId(request);
      response.setHeader('x-request-id', id);
      for (const [name, value] of Object.entries(problem.options.headers ?? {})) {
        response.setHeader(name, value);
      }
      this.send(response, 503, PROBLEM_CONTENT_TYPE, problem.document(request.url ?? '/', id));
    }
  }

  private send(response: ServerResponse, status: number, type: string, body: unknown): void {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    response.end(JSON.stringify(body));
  }
}
