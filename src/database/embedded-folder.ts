import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import type { KilnConfig } from '../config/config.js';

/** The database Kiln uses on its embedded server, and the server's superuser. */
const DATABASE = 'kiln';
const USER = 'postgres';

/**
 * An expected condition of the embedded PostgreSQL (none running, another Kiln running it, a
 * server that would not start): said in one line, without a stack.
 */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
}

/** What PostgreSQL does not keep itself: the superuser's password, and who last started it. */
export interface EmbeddedRecord {
  password: string;
  /** The port it last listened on, asked for again at the next start. */
  port: number;
  /** The pid of the Kiln process that started it, its parent for as long as that one lives. */
  owner: number;
}

/** What `postmaster.pid` says of the server running on the cluster, if any. */
export interface Postmaster {
  pid: number;
  port: number;
  /** Accepting connections (not starting or stopping). */
  ready: boolean;
}

/**
 * The folder of the embedded PostgreSQL (EMBEDDED_POSTGRES_DIR): the cluster in `data/`, and
 * beside it `kiln.json`, Kiln's record of it (written before initdb, so the password is never
 * lost). Other processes find a running server through PostgreSQL's own `data/postmaster.pid`.
 */
export class EmbeddedFolder {
  readonly data: string;
  private readonly recordFile: string;

  constructor(readonly dir: string) {
    this.data = join(dir, 'data');
    this.recordFile = join(dir, 'kiln.json');
  }

  /** For messages: relative to the working directory when below it (`var/postgres`). */
  get shown(): string {
    return shownPath(this.dir);
  }

  get initialised(): boolean {
    return existsSync(join(this.data, 'PG_VERSION'));
  }

  get postmasterFile(): string {
    return join(this.data, 'postmaster.pid');
  }

  async readRecord(): Promise<EmbeddedRecord | undefined> {
    const text = await readFile(this.recordFile, 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as EmbeddedRecord);
  }

  async writeRecord(record: EmbeddedRecord): Promise<void> {
    // It holds the superuser's password: readable by this user only.
    await writeFile(this.recordFile, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  }

  /**
   * PostgreSQL's lock file: the postmaster's pid on line 1, its port on line 4, its status on
   * line 8. It may name a process that has died: see `isAlive`.
   */
  async postmaster(): Promise<Postmaster | undefined> {
    const text = await readFile(this.postmasterFile, 'utf8').catch(() => undefined);
    const lines = text?.split('\n') ?? [];
    const [pid, port] = [Number(lines[0]), Number(lines[3])];
    if (!(pid > 0 && port > 0)) return undefined;
    return { pid, port, ready: lines[7]?.trim() === 'ready' };
  }

  url(record: EmbeddedRecord, port: number): string {
    return `postgres://${USER}:${record.password}@127.0.0.1:${port}/${DATABASE}`;
  }
}

export function shownPath(dir: string): string {
  const below = relative(process.cwd(), dir);
  return below && !below.startsWith('..') && !isAbsolute(below) ? below : dir;
}

/** The configuration with the URL of the embedded server filled in. */
export function withDatabaseUrl(config: KilnConfig, url: string): KilnConfig {
  return { ...config, database: { ...config.database, url } };
}

/** Whether a process of that pid exists (one of another user's counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The configuration pointed at the embedded server a running Kiln started, for the key CLI and
 * the migration commands; unchanged with DATABASE_URL. They never start the server themselves:
 * a Kiln starting meanwhile would take it for one left running by a dead Kiln and stop it.
 */
export async function connectToRunning(config: KilnConfig): Promise<KilnConfig> {
  const dir = config.database.embeddedDir;
  if (dir === undefined) return config;
  const folder = new EmbeddedFolder(dir);
  const [postmaster, record] = await Promise.all([folder.postmaster(), folder.readRecord()]);
  if (!postmaster?.ready || !isAlive(postmaster.pid) || !record) {
    throw new EmbeddedPostgresError(
      `No embedded PostgreSQL runs in ${folder.shown}: start Kiln first (npm start), or set DATABASE_URL`,
    );
  }
  return withDatabaseUrl(config, folder.url(record, postmaster.port));
}
