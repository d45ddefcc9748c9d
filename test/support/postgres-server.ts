import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { postgresBinaries, runAs } from '../../src/database/embedded-postgres.js';
import { freePort } from './ports.js';

/**
 * A PostgreSQL cluster of the test's own, in a temp dir on a port of its own, that the test may
 * stop, freeze and restart: never the suite's. Trust auth, user `postgres`, database `kiln`; the
 * binaries of Kiln's embedded PostgreSQL (embedded-postgres), as the postgres user under root.
 */
export class OwnPostgres {
  private process?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly dataDir: string,
    private readonly binary: string,
    private readonly user: { uid: number; gid: number } | undefined,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/kiln`;
  }

  static async start(): Promise<OwnPostgres> {
    const root = mkdtempSync(join(tmpdir(), 'kiln-pg-'));
    const dataDir = join(root, 'data');
    const [{ initdb, postgres }, user, port] = await Promise.all([
      postgresBinaries(),
      runAs(),
      freePort(),
    ]);
    const server = new OwnPostgres(port, dataDir, postgres, user);
    if (user) {
      chmodSync(root, 0o755);
      chownSync(root, user.uid, user.gid);
    }
    execFileSync(
      initdb,
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'],
      { stdio: 'ignore', ...user },
    );
    await server.restart();
    const client = new pg.Client({ connectionString: server.url.replace(/kiln$/, 'postgres') });
    await client.connect();
    await client.query('CREATE DATABASE kiln');
    await client.end();
    return server;
  }

  /**
   * Starts the server (again), keeping its data, and waits until it accepts connections. A server
   * that runs is left as it is: a second one on its data would exit, and take this handle with it.
   */
  async restart(): Promise<void> {
    if (this.running) return;
    this.process = spawn(
      this.binary,
      [
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${this.dataDir}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=200',
      ],
      { stdio: 'ignore', ...this.user },
    );
    for (let tries = 0; ; tries++) {
      const client = new pg.Client({
        connectionString: this.url.replace(/kiln$/, 'postgres'),
        connectionTimeoutMillis: 1_000,
      });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (error) {
        if (tries > 200) throw error;
        await sleep(50);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }

  /** A fast shutdown (`pg_ctl stop -m fast`): sessions are ended, the port closes. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.process!.kill('SIGINT');
    await once(this.process!, 'exit');
  }

  /** Every process of the cluster stopped (SIGSTOP): connections open, nothing answers. */
  freeze(): void {
    this.signalAll('SIGSTOP');
  }

  thaw(): void {
    this.signalAll('SIGCONT');
  }

  /** Stops the server and removes its data. */
  async destroy(): Promise<void> {
    this.thaw();
    await this.stop();
    rmSync(join(this.dataDir, '..'), { recursive: true, force: true });
  }

  private get running(): boolean {
    return this.process?.exitCode === null && this.process.signalCode === null;
  }

  private signalAll(signal: NodeJS.Signals): void {
    const pid = this.process?.pid;
    if (pid === undefined || this.process?.exitCode !== null) return;
    // The postmaster and its backends: children of the postmaster's pid.
    const children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    for (const target of [pid, ...children]) process.kill(target, signal);
  }
}
