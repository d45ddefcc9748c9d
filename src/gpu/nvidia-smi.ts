import { oneLineTail } from '../common/one-line-tail.js';
import { NotStartedError, type ProcessResult, runProcess } from '../process/child-process.js';

export const NVIDIA_SMI_QUERY = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'ecc.errors.uncorrected.volatile.total',
] as const;

export const NVIDIA_SMI_ARGS = [
  `--query-gpu=${NVIDIA_SMI_QUERY.join(',')}`,
  '--format=csv,noheader,nounits',
] as const;

export interface GpuReading {
  index: number;
  uuid: string;
  name: string;
  memoryTotalBytes: number | null;
  memoryUsedBytes: number | null;
  /** 0..1 */
  utilizationRatio: number | null;
  temperatureCelsius: number | null;
  powerDrawWatts: number | null;
  eccUncorrectedErrors: number | null;
}

/** The outcome of one nvidia-smi run. */
export type GpuCheck =
  | { state: 'ok'; gpus: GpuReading[]; message: string; checkedAt: Date }
  | { state: 'ecc_errors'; gpus: GpuReading[]; message: string; checkedAt: Date }
  | { state: 'no_gpu'; message: string; checkedAt: Date }
  | { state: 'missing'; message: string; checkedAt: Date }
  | { state: 'failed'; exitCode: number | null; message: string; checkedAt: Date }
  | { state: 'timeout'; message: string; checkedAt: Date }
  | { state: 'unparseable'; message: string; checkedAt: Date };

export type GpuStatus = GpuCheck | { state: 'pending'; message: string; checkedAt: null };

const MIB = 1_048_576;
/** `[N/A]`, `[Not Supported]`, `[Unknown Error]` and the like, or a bare `N/A`. */
const NOT_AVAILABLE = /^(\[.*\]|N\/A)$/;
const OUTPUT_LIMIT_CHARS = 64 * 1024;
const MESSAGE_LIMIT = 500;
/** Spawn errors that mean there is nothing runnable at the path. */
const MISSING_CODES = new Set(['ENOENT', 'ENOTDIR', 'EACCES']);

type QueryField = (typeof NVIDIA_SMI_QUERY)[number];

/** Parses `--format=csv,noheader,nounits` output: one line per GPU. */
export function parseNvidiaSmi(stdout: string): GpuReading[] {
  return stdout
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
    .map(parseLine);
}

function parseLine(line: string): GpuReading {
  const fields = line.split(', ').map((field) => field.trim());
  if (fields.length !== NVIDIA_SMI_QUERY.length) {
    throw new Error(
      `Expected ${NVIDIA_SMI_QUERY.length} fields, got ${fields.length} in line '${line}'`,
    );
  }
  const field = (key: QueryField): string => fields[NVIDIA_SMI_QUERY.indexOf(key)] ?? '';
  const number = (key: QueryField): number | null => {
    const text = field(key);
    if (NOT_AVAILABLE.test(text)) return null;
    const value = Number(text);
    if (text === '' || !Number.isFinite(value)) {
      throw new Error(`${key} '${text}' is not a number in line '${line}'`);
    }
    return value;
  };
  if (!/^\d+$/.test(field('index'))) {
    throw new Error(`index '${field('index')}' is not a number in line '${line}'`);
  }
  const mib = (key: QueryField): number | null => {
    const value = number(key);
    return value === null ? null : value * MIB;
  };
  const utilization = number('utilization.gpu');
  return {
    index: Number(field('index')),
    uuid: field('uuid'),
    name: field('name'),
    memoryTotalBytes: mib('memory.total'),
    memoryUsedBytes: mib('memory.used'),
    utilizationRatio: utilization === null ? null : utilization / 100,
    temperatureCelsius: number('temperature.gpu'),
    powerDrawWatts: number('power.draw'),
    eccUncorrectedErrors: number('ecc.errors.uncorrected.volatile.total'),
  };
}

/** Runs nvidia-smi and says what state the GPUs are in; never rejects. */
export async function queryNvidiaSmi(path: string, timeoutMs: number): Promise<GpuCheck> {
  const signal = AbortSignal.timeout(timeoutMs);
  let stdout = '';
  try {
    // No grace: a hung nvidia-smi and whatever it started are killed at once.
    const result = await runProcess(path, {
      args: NVIDIA_SMI_ARGS,
      signal,
      killGraceMs: 0,
      onStdoutLine: (line) => {
        if (stdout.length < OUTPUT_LIMIT_CHARS) stdout += `${line}\n`;
      },
    });
    return classify(path, { ...result, stdout }, new Date());
  } catch (error) {
    return notRun(path, timeoutMs, signal.aborted, error);
  }
}

function notRun(path: string, timeoutMs: number, timedOut: boolean, error: unknown): GpuCheck {
  const checkedAt = new Date();
  if (timedOut)
    return {
      state: 'timeout',
      message: `${path} hung for ${timeoutMs} ms and was killed`,
      checkedAt,
    };
  if (
    error instanceof NotStartedError &&
    error.code !== undefined &&
    MISSING_CODES.has(error.code)
  ) {
    const problem = error.code === 'EACCES' ? 'is not executable' : 'was not found';
    return {
      state: 'missing',
      message: `nvidia-smi ${problem} at '${path}'; set NVIDIA_SMI_PATH to where it is`,
      checkedAt,
    };
  }
  // NotStartedError says it did not start and why; anything else was thrown by spawn itself.
  const message =
    error instanceof NotStartedError ? error.message : `${path} did not start: ${String(error)}`;
  return { state: 'failed', exitCode: null, message, checkedAt };
}

function classify(
  path: string,
  { code, signal, stdout, stderr }: ProcessResult & { stdout: string },
  checkedAt: Date,
): GpuCheck {
  // nvidia-smi exits 6 with this when the driver sees no GPU.
  if (/No devices were found/i.test(`${stdout}\n${stderr}`)) {
    return { state: 'no_gpu', message: 'nvidia-smi found no GPU', checkedAt };
  }
  if (code !== 0) {
    const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
    const said = tail(`${stdout}\n${stderr}`);
    return {
      state: 'failed',
      exitCode: code,
      message: `${path} ${how}${said ? `: ${said}` : ''}`,
      checkedAt,
    };
  }
  let gpus: GpuReading[];
  try {
    gpus = parseNvidiaSmi(stdout);
  } catch (error) {
    return {
      state: 'unparseable',
      message: `Unexpected nvidia-smi output: ${tail((error as Error).message)}`,
      checkedAt,
    };
  }
  if (gpus.length === 0) return { state: 'no_gpu', message: 'nvidia-smi listed no GPU', checkedAt };
  const faulty = gpus.filter((gpu) => (gpu.eccUncorrectedErrors ?? 0) > 0);
  if (faulty.length > 0) {
    const problems = faulty.map(
      (gpu) =>
        `GPU ${gpu.index} (${gpu.uuid}) has ${gpu.eccUncorrectedErrors} uncorrected ECC errors`,
    );
    return { state: 'ecc_errors', gpus, message: problems.join('; '), checkedAt };
  }
  const names = gpus.map((gpu) => `${gpu.index}: ${gpu.name}`).join(', ');
  return { state: 'ok', gpus, message: `${gpus.length} GPU(s): ${names}`, checkedAt };
}

const tail = (text: string) => oneLineTail(text, MESSAGE_LIMIT);
