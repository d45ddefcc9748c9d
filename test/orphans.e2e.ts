import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { processGroupsDir, recordGroup } from '../src/process/process-groups.js';
import { CogServer } from './support/cog-server.js';
import { TEST_ENV, TestKiln, resetState, useKiln } from './support/kiln.js';
import {
  fileWritten,
  gone,
  killHard,
  startWorkerProcess,
  waitUntilGone,
} from './support/processes.js';

const SILENT_SCRIPT = join(import.meta.dirname, 'fixtures/commands/silent.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'kiln-orphans-'));
const directory = processGroupsDir(resolve(TEST_ENV.TEMP_DIR!));

const COMMANDS = JSON.stringify({
  'silent-model': {
    path: process.execPath,
    args: [SILENT_SCRIPT],
    contentType: 'text/plain',
    extension: 'txt',
    input: {
      type: 'object',
      properties: { pidFile: { type: 'string' } },
      required: ['pidFile'],
      additionalProperties: false,
    },
    example: { pidFile: '/tmp/pids.json' },
  },
});

let worker: ChildProcess | undefined;
afterEach(async () => {
  if (worker) await killHard(worker);
  worker = undefined;
});

describe('a command whose worker is killed', () => {
  const api = useKiln({ KILN_ROLE: 'api', COMMAND_GENERATORS: COMMANDS });

  it('is killed by its supervisor, its own child too, within seconds', async () => {
    worker = await startWorkerProcess({
      COMMAND_GENERATORS: COMMANDS,
      COMMAND_KILL_GRACE_MS: '2000',
    });
    const pidFile = join(scratch, 'silent.json');
    const { body } = await api.submit('silent-model', { pidFile });
    const { pid, child } = JSON.parse(await fileWritten(pidFile)) as { pid: number; child: number };
    await api.waitForStatus(body.id, 'processing');
    expect([gone(pid), gone(child)]).toEqual([false, false]);
    // Recorded while it runs, for a worker that starts after this one died.
    expect(existsSync(join(directory, `${worker.pid}-${pid}.json`))).toBe(true);

    await killHard(worker);
    // It prints nothing, so no broken pipe would ever stop it: only the supervisor does.
    const tookMs = Math.max(await waitUntilGone(pid, 5_000), await waitUntilGone(child, 5_000));
    expect(tookMs).toBeLessThan(2_000);
  });
});

/** A process group as a command makes one: a leader and a child of its own, both asleep. */
async function startGroup(): Promise<{ leader: ChildProcess; child: number }> {
  const leader = spawn(
    process.execPath,
    [
      '-e',
      `const c = require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
       console.log(c.pid); setTimeout(() => {}, 60_000);`,
    ],
    { detached: true, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(leader.stdout, 'data')) as [Buffer];
  return { leader, child: Number(line.toString()) };
}

describe('a worker starting on a host where a worker died', () => {
  it('kills the process groups its dead predecessor recorded, and only those', async () => {
    await resetState();
    const orphaned = await startGroup();
    const alive = await startGroup();
    try {
      // The predecessor: a process that records a group, as runProcess does, and then dies.
      const predecessor = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { recordGroup } = await import(${JSON.stringify(join(process.cwd(), 'dist/src/process/process-groups.js'))});
           await recordGroup(${JSON.stringify(directory)}, ${orphaned.leader.pid});
           process.kill(process.pid, 'SIGKILL');`,
        ],
        { stdio: 'inherit' },
      );
      await once(predecessor, 'exit');
      const left = join(directory, `${predecessor.pid}-${orphaned.leader.pid}.json`);
      expect(existsSync(left)).toBe(true);
      // A worker still running on this host (this test process) keeps its group.
      const kept = await recordGroup(directory, alive.leader.pid!);

      await TestKiln.using({ KILN_ROLE: 'worker' }, async () => {
        await waitUntilGone(orphaned.leader.pid!, 2_000);
        await waitUntilGone(orphaned.child, 2_000);
        expect([gone(alive.leader.pid!), gone(alive.child)]).toEqual([false, false]);
        expect([existsSync(left), existsSync(kept)]).toEqual([false, true]);
      });
    } finally {
      for (const { leader } of [orphaned, alive]) {
        try {
          process.kill(-leader.pid!, 'SIGKILL');
        } catch {
          // Already killed.
        }
      }
    }
  });
});

describe('a prediction whose worker is killed', () => {
  let cog: CogServer;
  let api: TestKiln;
  const models = () =>
    JSON.stringify({ 'cog-model': { url: cog.url, pollIntervalMs: 50, requestTimeoutMs: 2_000 } });

  beforeAll(async () => {
    await resetState();
    cog = await CogServer.start();
    api = await TestKiln.start({ KILN_ROLE: 'api', MODEL_SERVERS: models() });
  });
  afterAll(async () => {
    await api.close();
    await cog.close();
  });

  it('is cancelled by the next attempt before that one starts its own', async () => {
    worker = await startWorkerProcess({ MODEL_SERVERS: models() });
    const { body } = await api.submit('cog-model', { text: 'left behind', mode: 'hang' });
    await api.waitForProgress(body.id);
    await killHard(worker);
    const first = cog.predictions.get(`${body.id}-1`);
    expect(first?.status).toBe('processing');

    await TestKiln.using({ KILN_ROLE: 'worker', MODEL_SERVERS: models() }, async () => {
      const second = await api.waitForJob(body.id, (job) => job.attempts === 2 && job.progress > 0);
      expect(second.status).toBe('processing');
      expect(first?.status).toBe('canceled');
      const cancel = cog.requests.indexOf(`POST /predictions/${body.id}-1/cancel`);
      expect(cancel).toBeGreaterThan(-1);
      expect(cancel).toBeLessThan(cog.requests.indexOf(`PUT /predictions/${body.id}-2`));
      await api.request('DELETE', `/jobs/${body.id}`);
      await api.waitForStatus(body.id, 'cancelled');
    });
  });
});
