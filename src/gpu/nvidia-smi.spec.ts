import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Logger } from '@nestjs/common';
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import type { KilnConfig } from '../config/config.js';
import { GpuMonitor } from './gpu-monitor.service.js';
import { parseNvidiaSmi, queryNvidiaSmi } from './nvidia-smi.js';

const H100_LINE =
  '0, GPU-8f1c2a9e-4b7d-4c1e-9a3f-2d5e6b7c8d90, NVIDIA H100 80GB HBM3, 81559, 1234, 17, 34, 71.52, 0';
const MIB = 1_048_576;

function fixtureDir(name: string): string {
  return fileURLToPath(new URL(`../../test/fixtures/nvidia-smi/${name}/`, import.meta.url));
}

function fixture(name: string): string {
  return join(fixtureDir(name), 'nvidia-smi');
}

/** Alive and not a zombie waiting for init to reap it. */
function isRunning(pid: number): boolean {
  const state = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout;
  return state.trim() !== '' && !state.trim().startsWith('Z');
}

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('parseNvidiaSmi', () => {
  it('reads the csv,noheader,nounits line format, in bytes and ratios', () => {
    expect(parseNvidiaSmi(`${H100_LINE}\n`)).toEqual([
      {
        index: 0,
        uuid: 'GPU-8f1c2a9e-4b7d-4c1e-9a3f-2d5e6b7c8d90',
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotalBytes: 81559 * MIB,
        memoryUsedBytes: 1234 * MIB,
        utilizationRatio: 0.17,
        temperatureCelsius: 34,
        powerDrawWatts: 71.52,
        eccUncorrectedErrors: 0,
      },
    ]);
  });

  it('reads every kind of unavailable value as null', () => {
    const [gpu] = parseNvidiaSmi(
      '3, GPU-x, Tesla T4, [N/A], N/A, [Not Supported], [Unknown Error], [N/A], [N/A]\r\n',
    );
    expect(gpu).toMatchObject({
      index: 3,
      memoryTotalBytes: null,
      memoryUsedBytes: null,
      utilizationRatio: null,
      temperatureCelsius: null,
      powerDrawWatts: null,
      eccUncorrectedErrors: null,
    });
  });

  it('reads one GPU per line and nothing from blank output', () => {
    expect(parseNvidiaSmi(`${H100_LINE}\n${H100_LINE.replace(/^0/, '1')}\n\n`)).toHaveLength(2);
    expect(parseNvidiaSmi('\n')).toEqual([]);
  });

  it('throws naming the line on a wrong field count or a non-numeric value', () => {
    expect(() => parseNvidiaSmi('0, GPU-x, NVIDIA H100')).toThrow(
      "Expected 9 fields, got 3 in line '0, GPU-x, NVIDIA H100'",
    );
    expect(() => parseNvidiaSmi(`${H100_LINE}, 1`)).toThrow('got 10');
    expect(() => parseNvidiaSmi(H100_LINE.replace(/^0/, 'GPU'))).toThrow(
      `index 'GPU' is not a number in line 'GPU, `,
    );
    expect(() => parseNvidiaSmi(H100_LINE.replace('71.52', 'lots'))).toThrow(
      "power.draw 'lots' is not a number",
    );
  });
});

describe('queryNvidiaSmi', () => {
  it('reports the GPUs of a healthy machine', async () => {
    const status = await queryNvidiaSmi(fixture('ok'), 5000);
    expect(status).toMatchObject({ state: 'ok', checkedAt: expect.any(Date) });
    expect(status.state === 'ok' && status.gpus.map((gpu) => gpu.name)).toEqual([
      'NVIDIA H100 80GB HBM3',
      'NVIDIA GeForce RTX 4090',
    ]);
    expect(status.state === 'ok' && status.gpus[1]).toMatchObject({
      powerDrawWatts: null,
      eccUncorrectedErrors: null,
    });
  });

  it('finds a bare name on PATH', async () => {
    vi.stubEnv('PATH', `${fixtureDir('ok')}${delimiter}${process.env.PATH}`);
    expect(await queryNvidiaSmi('nvidia-smi', 5000)).toMatchObject({ state: 'ok' });
  });

  it('reports uncorrected ECC errors with the GPU and the count', async () => {
    expect(await queryNvidiaSmi(fixture('ecc'), 5000)).toMatchObject({
      state: 'ecc_errors',
      gpus: [expect.objectContaining({ eccUncorrectedErrors: 3 })],
      message: 'GPU 0 (GPU-5d2c8e7f-1a3b-4c6d-9e0f-7b8a9c0d1e2f) has 3 uncorrected ECC errors',
    });
  });

  it('reports no GPU when nvidia-smi finds none', async () => {
    expect(await queryNvidiaSmi(fixture('no-devices'), 5000)).toMatchObject({ state: 'no_gpu' });
  });

  it('reports a missing or non-executable binary by its path', async () => {
    for (const path of ['/nonexistent/nvidia-smi', fixtureDir('ok')]) {
      const status = await queryNvidiaSmi(path, 5000);
      expect(status).toMatchObject({ state: 'missing', checkedAt: expect.any(Date) });
      expect(status.message).toContain(`'${path}'`);
      expect(status.message).toContain('NVIDIA_SMI_PATH');
    }
  });

  it('reports a failure with the exit code and what nvidia-smi said', async () => {
    const status = await queryNvidiaSmi(fixture('failing'), 5000);
    expect(status).toMatchObject({ state: 'failed', exitCode: 9 });
    expect(status.message).toMatch(/exited with code 9: NVIDIA-SMI has failed because it couldn't/);
  });

  it('quotes only the end of a long failure', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'kiln-gpu-'));
    const script = join(scratch, 'nvidia-smi');
    writeFileSync(
      script,
      `#!/bin/sh\necho ${'a'.repeat(2000)}\necho ${'b'.repeat(2000)} >&2\nexit 1\n`,
    );
    chmodSync(script, 0o755);
    try {
      const status = await queryNvidiaSmi(script, 5000);
      expect(status).toMatchObject({ state: 'failed', exitCode: 1 });
      expect(status.message).toMatch(/exited with code 1: …b{500}$/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('reports output it cannot read', async () => {
    const status = await queryNvidiaSmi(fixture('garbage'), 5000);
    expect(status).toMatchObject({ state: 'unparseable' });
    expect(status.message).toContain('Expected 9 fields, got 3');
  });

  it('kills a hung nvidia-smi and everything it started', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'kiln-gpu-'));
    const pidFile = join(scratch, 'pids');
    vi.stubEnv('FAKE_NVIDIA_SMI_PID_FILE', pidFile);
    try {
      const startedAt = Date.now();
      const status = await queryNvidiaSmi(fixture('hang'), 500);
      expect(Date.now() - startedAt).toBeLessThan(5000);
      expect(status).toMatchObject({
        state: 'timeout',
        message: expect.stringContaining('500 ms'),
      });

      const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
      expect(pids).toHaveLength(2);
      await vi.waitFor(() => expect(pids.filter(isRunning)).toEqual([]), { timeout: 2000 });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('GpuMonitor', () => {
  let log: MockInstance<Logger['log']>;
  let warn: MockInstance<Logger['warn']>;

  beforeEach(() => {
    log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => {});
    warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => {});
  });

  function monitorOf(nvidiaSmiPath: string) {
    const gpu = { nvidiaSmiPath, required: true, pollIntervalMs: 50, pollTimeoutMs: 5000 };
    return { gpu, monitor: new GpuMonitor({ gpu } as unknown as KilnConfig) };
  }

  it('is pending until polled, then keeps the latest status', async () => {
    const { gpu, monitor } = monitorOf(fixture('ok'));
    expect(monitor.status).toMatchObject({ state: 'pending', checkedAt: null });

    await expect(monitor.poll()).resolves.toMatchObject({ state: 'ok' });
    expect(monitor.status.state).toBe('ok');

    gpu.nvidiaSmiPath = fixture('failing');
    await monitor.poll();
    expect(monitor.status).toMatchObject({ state: 'failed', exitCode: 9 });
  });

  it('logs a change of state once, not every poll', async () => {
    const { gpu, monitor } = monitorOf(fixture('failing'));
    await monitor.poll();
    await monitor.poll();
    gpu.nvidiaSmiPath = fixture('ok');
    await monitor.poll();
    await monitor.poll();
    expect(warn).toHaveBeenCalledOnce();
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^GPU failed: /));
    expect(log).toHaveBeenCalledOnce();
    expect(log).toHaveBeenCalledWith(expect.stringMatching(/^GPU ok: 2 GPU\(s\)/));
  });

  it('polls from bootstrap until shutdown', async () => {
    const { gpu, monitor } = monitorOf(fixture('ok'));
    monitor.onApplicationBootstrap();
    await vi.waitFor(() => expect(monitor.status.state).toBe('ok'));

    gpu.nvidiaSmiPath = fixture('ecc');
    await vi.waitFor(() => expect(monitor.status.state).toBe('ecc_errors'));

    await monitor.onApplicationShutdown();
    gpu.nvidiaSmiPath = fixture('failing');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(monitor.status.state).toBe('ecc_errors');
  });

  it('shares a poll in flight', async () => {
    const { monitor } = monitorOf(fixture('ok'));
    const first = monitor.poll();
    expect(monitor.poll()).toBe(first);
    await first;
  });
});
