import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DataSource } from 'typeorm';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ArtifactStore } from '../src/artifacts/artifact-store.service.js';
import type { CleanupReport } from '../src/cleanup/cleanup.service.js';
import { withAdvisoryLock } from '../src/database/advisory-lock.js';
import { PROCESS_GROUPS_DIR } from '../src/process/process-groups.js';
import { JobQueue } from '../src/jobs/job-queue.service.js';
import type { JobStatus } from '../src/jobs/job.entity.js';
import { insertJob } from './support/builders.js';
import { TEST_QUEUE_BACKEND } from './support/env.js';
import { TestKiln, resetState, sql, useKiln } from './support/kiln.js';

const sha = (digit: string) => digit.repeat(64);
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const ago = (ms: number) => new Date(Date.now() - ms);

/** A job row as cleanup would find it; `ageMs` is how long ago it was created and finished. */
function seedJob(status: JobStatus, ageMs: number, artifact: string | null = null) {
  const at = ago(ageMs);
  return insertJob({
    status,
    artifact_sha256: artifact,
    created_at: at,
    started_at: status === 'pending' ? null : at,
    finished_at: ['completed', 'failed', 'cancelled'].includes(status) ? at : null,
  });
}

async function seedArtifact(kiln: TestKiln, digest: string, ageMs: number): Promise<string> {
  await sql(
    `INSERT INTO artifacts (sha256, content_type, extension, size_bytes, last_used_at)
     VALUES ($1, 'audio/wav', 'wav', 4, $2)`,
    [digest, ago(ageMs)],
  );
  const path = kiln.app.get(ArtifactStore).pathOf(digest);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, 'data');
  return path;
}

/** A file or directory in TEMP_DIR, its modification time set `ageMs` in the past. */
async function seedTemp(kiln: TestKiln, name: string, ageMs: number, directory = false) {
  const path = join(kiln.config.storage.tempDir, name);
  if (directory) {
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'scratch.bin'), 'x');
  } else {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, 'x');
  }
  const at = ago(ageMs);
  await utimes(path, at, at);
}

async function runCleanup(kiln: TestKiln): Promise<CleanupReport> {
  const { status, body } = await kiln.request<CleanupReport>('POST', '/admin/cleanup');
  expect(status).toBe(200);
  return body;
}

describe('cleanup', () => {
  const kiln = useKiln({ KILN_ROLE: 'api' });
  beforeEach(async () => {
    await resetState();
    const { tempDir } = kiln.config.storage;
    await rm(tempDir, { recursive: true, force: true });
    await mkdir(tempDir, { recursive: true });
  });

  it('removes exactly the old finished jobs, their unused artifacts and stale temp files', async () => {
    const onlyOld = await seedArtifact(kiln, sha('a'), 8 * DAY_MS);
    const shared = await seedArtifact(kiln, sha('b'), 8 * DAY_MS);
    const orphan = await seedArtifact(kiln, sha('c'), 2 * HOUR_MS);
    const fresh = await seedArtifact(kiln, sha('d'), 60_000);
    const expired = [
      await seedJob('completed', 8 * DAY_MS, sha('a')),
      await seedJob('completed', 8 * DAY_MS, sha('b')),
      await seedJob('failed', 8 * DAY_MS),
      await seedJob('cancelled', 8 * DAY_MS),
    ];
    const kept = [
      await seedJob('completed', 6 * DAY_MS, sha('b')),
      await seedJob('pending', 30 * DAY_MS),
      await seedJob('processing', 30 * DAY_MS),
    ];
    const running = kept[2]!;
    await seedTemp(kiln, `${running}-1`, 2 * HOUR_MS, true);
    await seedTemp(kiln, `${expired[0]}-1`, 2 * HOUR_MS, true);
    await seedTemp(kiln, 'stray.partial', 2 * HOUR_MS);
    const recent = `${randomUUID()}-2`;
    await seedTemp(kiln, recent, 10 * 60_000, true);
    // The records of running commands' process groups, however old.
    await seedTemp(kiln, PROCESS_GROUPS_DIR, 2 * HOUR_MS, true);

    const report = await runCleanup(kiln);

    expect(report).toEqual({
      queueBackend: TEST_QUEUE_BACKEND,
      removed: { jobs: 4, artifacts: 2, temp_files: 2, queue_entries: 0, rate_limit_counters: 0 },
      reconciled: { enqueued: 2, failed: 0 },
      skipped: [],
    });
    const left = await sql<{ id: string }>(`SELECT id FROM jobs`);
    expect(left.map((row) => row.id).sort()).toEqual(kept.sort());
    const artifacts = await sql<{ sha256: string }>(`SELECT sha256 FROM artifacts ORDER BY 1`);
    expect(artifacts.map((row) => row.sha256)).toEqual([sha('b'), sha('d')]);
    expect([onlyOld, shared, orphan, fresh].map((path) => existsSync(path))).toEqual([
      false,
      true,
      false,
      true,
    ]);
    const temp = await readdir(kiln.config.storage.tempDir);
    expect(temp.sort()).toEqual([`${running}-1`, recent, PROCESS_GROUPS_DIR].sort());

    const metrics = await (await kiln.fetch('/metrics')).text();
    expect(metrics).toMatch(/^kiln_cleanup_removed_total\{target="jobs"\} 4$/m);
    expect(metrics).toMatch(/^kiln_cleanup_removed_total\{target="artifacts"\} 2$/m);
    expect(metrics).toMatch(/^kiln_cleanup_removed_total\{target="temp_files"\} 2$/m);
  });

  it('does the work in one replica only when two race for it', async () => {
    await TestKiln.using({ KILN_ROLE: 'api' }, async (other) => {
      for (let i = 0; i < 3; i++) await seedJob('completed', 8 * DAY_MS);
      const reports = await Promise.all([runCleanup(kiln), runCleanup(other)]);
      expect(reports.reduce((sum, report) => sum + report.removed.jobs, 0)).toBe(3);

      // While another replica holds the lock, a run skips instead of doing the work twice.
      await seedJob('failed', 8 * DAY_MS);
      const skipped = await withAdvisoryLock(
        other.app.get(DataSource),
        'cleanup:jobs',
        () => runCleanup(kiln),
        { wait: false },
      );
      expect(skipped?.skipped).toEqual(['jobs']);
      expect(skipped?.removed.jobs).toBe(0);
      expect(await sql(`SELECT id FROM jobs`)).toHaveLength(1);
      expect((await runCleanup(kiln)).removed.jobs).toBe(1);
    });
  });
});

describe('cleanup of BullMQ entries', () => {
  const kiln = useKiln({ MAX_RETRIES: '0', QUEUE_RETENTION: '0' });

  it('removes failed entries past retention', async () => {
    const { body } = await kiln.submit('test', { failTimes: 1 });
    await kiln.waitForStatus(body.id, 'failed');
    const queue = kiln.app.get(JobQueue);
    // The row fails first; BullMQ moves its entry to failed once the worker's attempt returns.
    await vi.waitFor(async () => expect((await queue.counts())['generation-cpu']?.failed).toBe(1));

    expect((await runCleanup(kiln)).removed.queue_entries).toBe(1);
    expect((await queue.counts())['generation-cpu']?.failed).toBe(0);
  });
});
