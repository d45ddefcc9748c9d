import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrations } from '../migrations/index.js';
import { KilnProcess } from './support/kiln-process.js';
import { freePort } from './support/ports.js';
import { gone, waitUntilGone } from './support/processes.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-embedded-'));
// As root, PostgreSQL runs as the postgres user, which must be able to reach its folder.
chmodSync(root, 0o755);
const dir = join(root, 'postgres');
const data = join(dir, 'data');
/** Kiln as the quick start runs it, without DATABASE_URL or REDIS_URL: its own PostgreSQL. */
const ENV = {
  DATABASE_URL: '',
  REDIS_URL: '',
  QUEUE_BACKEND: '',
  EMBEDDED_POSTGRES_DIR: dir,
  LOG_LEVEL: 'log',
};
const JOB = { kind: 'music', input: { prompt: 'drums', duration: 1 } };
const STARTED =
  /^Embedded PostgreSQL 18\.\d+ in (.+) \(port (\d+)\): for one machine; set DATABASE_URL for production$/;
const NOT_RUNNING = `No embedded PostgreSQL runs in ${dir}: start Kiln first (npm start), or set DATABASE_URL`;

/** The server PostgreSQL's lock file names, if any. */
function postmaster(): { pid: number; port: number } | undefined {
  const file = join(data, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  return { pid: Number(lines[0]), port: Number(lines[3]) };
}

/** Every live postmaster of this cluster, found by its command line: lock file or not. */
function postmasters(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(data);
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter((pid) => !gone(pid));
}

/** Runs a built entry point with the embedded environment; answers however it exits. */
function node(script: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { env: { ...process.env, ...ENV, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        // A number when it exited; a signal (the timeout's, say) counts as a failure.
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('an embedded PostgreSQL without DATABASE_URL', () => {
  let kiln: KilnProcess | undefined;
  let jobId = '';
  let key = '';

  afterAll(async () => {
    await kiln?.stop();
    // Whatever a failed test left running.
    for (const pid of postmasters()) {
      process.kill(pid, 'SIGINT');
      await waitUntilGone(pid, 30_000);
    }
    rmSync(root, { recursive: true, force: true });
  });

  async function start(): Promise<KilnProcess> {
    kiln = await KilnProcess.start(ENV);
    await kiln.until('/health/ready', 200, 60_000);
    return kiln;
  }

  /** The start line, checked against the lock file: where the data lives, on which port. */
  function startLine(running: KilnProcess) {
    const lines = running.lines().filter((line) => line.context === 'EmbeddedPostgres');
    const [, shown, port] = lines.map((line) => STARTED.exec(line.msg)).find(Boolean) ?? [];
    expect(shown).toBe(dir);
    expect(Number(port)).toBe(postmaster()?.port);
    return lines;
  }

  async function job() {
    return (await kiln!.request('GET', `/jobs/${jobId}`)).body;
  }

  it('starts a server of its own, makes the database and migrates it, and runs a job', async () => {
    const running = await start();
    startLine(running);
    // The server is Kiln's child, on loopback only.
    expect(readFileSync(`/proc/${postmaster()!.pid}/stat`, 'utf8').split(') ')[1]).toMatch(
      new RegExp(`^\\S+ ${running.pid} `),
    );
    expect(running.lines().filter((line) => /^Applied migration/.test(line.msg))).toHaveLength(
      migrations.length,
    );
    const submitted = await running.request('POST', '/jobs', JOB);
    expect(submitted.status).toBe(202);
    jobId = String(submitted.body.id);
    const deadline = Date.now() + 20_000;
    while ((await job()).status !== 'completed') {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(running.stderr).toBe('');
  }, 90_000);

  it('lets the key CLI find the running server', async () => {
    const created = await node('dist/src/cli.js', [
      'keys',
      'create',
      '--name',
      'embedded-cli',
      '--role',
      'client',
    ]);
    expect(created.code, created.stderr).toBe(0);
    key = created.stdout.trim().split('\n').at(-1)!;
    expect(key).toMatch(/^kiln_/);
    // The key is in the database Kiln serves from.
    const answer = await fetch(`${kiln!.url}/api/v1/jobs`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(answer.status).toBe(200);
    // db:create has nothing to do: Kiln made its database at start.
    const createDb = await node('dist/src/startup/create-database.js', []);
    expect(createDb).toMatchObject({ code: 0, stderr: '' });
    expect(createDb.stdout).toMatch(/^DATABASE_URL is unset: .* nothing to do\n$/);
  });

  it('stops the server after the app, and keeps the data across a restart', async () => {
    const before = postmaster()!;
    await kiln!.stop();
    await waitUntilGone(before.pid);
    expect(postmaster()).toBeUndefined();
    expect(kiln!.lines().at(-1)?.msg).toBe(`Embedded PostgreSQL in ${dir} stopped`);

    const running = await start();
    startLine(running);
    // The same port again, and nothing left to migrate.
    expect(postmaster()?.port).toBe(before.port);
    expect(running.lines().filter((line) => /^Applied migration/.test(line.msg))).toEqual([]);
    expect(await job()).toMatchObject({ id: jobId, status: 'completed' });
  }, 90_000);

  it('after kill -9, stops the orphaned server at the next start, data kept', async () => {
    const orphan = postmaster()!;
    await kiln!.kill();
    // The server outlived its parent.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(gone(orphan.pid)).toBe(false);

    const running = await start();
    const lines = startLine(running);
    expect(lines.filter((line) => line.level === 'warn').map((line) => line.msg)).toEqual([
      `Stopping the embedded PostgreSQL (pid ${orphan.pid}) in ${dir} that a Kiln process left running`,
    ]);
    expect(gone(orphan.pid)).toBe(true);
    expect(postmasters()).toEqual([postmaster()!.pid]);
    expect(await job()).toMatchObject({ id: jobId, status: 'completed' });
    const answer = await fetch(`${running.url}/api/v1/jobs`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(answer.status).toBe(200);

    await running.stop();
    expect(postmasters()).toEqual([]);
    expect(postmaster()).toBeUndefined();
  }, 90_000);

  it('tells the key CLI to start Kiln first when none runs', async () => {
    const listed = await node('dist/src/cli.js', ['keys', 'list']);
    expect(listed).toMatchObject({ code: 1, stdout: '', stderr: `${NOT_RUNNING}\n` });
  });

  it('refuses to start in production without DATABASE_URL, naming it', async () => {
    const elsewhere = join(root, 'never');
    const started = await node('dist/src/main.js', [], {
      NODE_ENV: 'production',
      EMBEDDED_POSTGRES_DIR: elsewhere,
      PORT: String(await freePort()),
    });
    expect(started.code).toBe(1);
    expect(started.stderr).toMatch(/^ {2}- DATABASE_URL: required with NODE_ENV=production/m);
    expect(existsSync(elsewhere)).toBe(false);
  });
});
