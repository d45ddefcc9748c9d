import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from './ports.js';

/** Debian's server binaries, whichever major version is installed. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const [major] = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  if (!major) throw new Error(`No PostgreSQL server under ${root}`);
  return join(root, major, 'bin');
}

/** initdb and postgres refuse to run as root: they run as the `postgres` system user then. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * A PostgreSQL cluster of the test's own, in a temp dir on a port of its own, that the test may
 * stop, freeze and restart: never the shared one. Trust auth, user `postgres`, database `kiln`.
 */
export class OwnPostgres {
  private process?: ChildProcess;
  private readonly user = runAs();

  private constructor(
    readonly port: number,
    private readonly dataDir: string,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/kiln`;
  }

  static async start(): Promise<OwnPostgres> {
    const root = mkdtempSync(join(tmpdir(), 'kiln-pg-'));
    const dataDir = join(root, 'data');
    const server = new OwnPostgres(await freePort(), dataDir);
    if (server.user) {
      chmodSync(root, 0o755);
      chownSync(root, server.user.uid, server.user.gid);
    }
    execFileSync(
      join(binDir(), 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'],
      { stdio: 'ignore', ...server.user },
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
      join(binDir(), 'postgres'),
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
