import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The entry of TEMP_DIR where runProcess names the process group of each command it runs, for as
 * long as it runs: a second safety net, for a supervisor that was killed itself (by the OOM killer,
 * say) together with its worker.
 */
export const PROCESS_GROUPS_DIR = 'process-groups';
export const processGroupsDir = (tempDir: string) => join(tempDir, PROCESS_GROUPS_DIR);

/** A process, told apart from a later one given the same pid by its start time. */
interface ProcessId {
  pid: number;
  /** Clock ticks since boot (field 22 of /proc/<pid>/stat); null where /proc is not readable. */
  start: string | null;
}

interface GroupRecord {
  worker: ProcessId;
  /** The command, leader of its own process group: its pid is the group's id. */
  group: ProcessId;
}

/** What /proc says of a live process (a zombie is not one), or undefined. */
async function inspect(pid: number): Promise<{ start: string | null } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return isSignallable(pid) ? { start: null } : undefined;
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const [state, ...rest] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return state === 'Z' ? undefined : { start: rest[18] ?? null };
}

function isSignallable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function identify(pid: number): Promise<ProcessId> {
  return { pid, start: (await inspect(pid))?.start ?? null };
}

/** Writes the record of a command's group; returns its file, to remove once the command is gone. */
export async function recordGroup(directory: string, pgid: number): Promise<string> {
  const record: GroupRecord = {
    worker: await identify(process.pid),
    group: await identify(pgid),
  };
  await mkdir(directory, { recursive: true });
  const file = join(directory, `${process.pid}-${pgid}.json`);
  await writeFile(file, JSON.stringify(record));
  return file;
}

/**
 * Kills (SIGKILL) the groups recorded by workers that are no longer alive, and removes their
 * records; returns how many groups were killed. A worker with the same pid but another start time
 * is another process: its predecessor is dead.
 */
export async function killOrphanedGroups(directory: string): Promise<number> {
  const names = await readdir(directory).catch(() => []);
  let killed = 0;
  for (const name of names) {
    const file = join(directory, name);
    const record = await readRecord(file);
    if (record && (await isAlive(record.worker))) continue;
    // Linux gives no new process the pid of a group still in use: a leader alive under another
    // start time means the recorded group has ended.
    if (record && (await isAliveOrGone(record.group)) && killGroup(record.group.pid, 'SIGKILL'))
      killed++;
    await rm(file, { force: true });
  }
  return killed;
}

async function readRecord(file: string): Promise<GroupRecord | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as GroupRecord;
  } catch {
    // Half written when its worker died, or not a record: nothing to act on.
    return undefined;
  }
}

async function isAlive({ pid, start }: ProcessId): Promise<boolean> {
  const now = await inspect(pid);
  return now !== undefined && now.start === start;
}

/** The leader is the one recorded, or it has exited (its group may live on without it). */
async function isAliveOrGone(group: ProcessId): Promise<boolean> {
  const now = await inspect(group.pid);
  return now === undefined || now.start === group.start;
}

/** Signals every process of a group; false when the group has ended. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
