/**
 * Runs one command for runProcess, and kills its process group when the process that started it
 * dies: Linux tells a child nothing when its parent dies (Node has no PR_SET_PDEATHSIG), but the
 * kernel closes the parent's end of the lifeline on fd 3, whatever killed it.
 *
 * Usage: node command-supervisor.js <kill grace ms> <path> [args…], with fd 3 a socket to the
 * parent. The command gets fds 0-2 as they are (no copying), in a process group of its own. The
 * supervisor writes JSON lines to fd 3: `{"pid"}` once started, then `{"exit":{code,signal}}` or
 * `{"error":{code,message}}`. The lifeline closing (the parent aborted, or died) kills the group:
 * SIGTERM, then SIGKILL after the grace.
 *
 * Plain Node, importing nothing heavy, so that it starts fast.
 */
import { spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { killGroup } from './process-groups.js';

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartError {
  code?: string;
  message: string;
}

/** What the supervisor tells its parent on fd 3, one JSON line each. */
export type SupervisorMessage = { pid: number } | { exit: ProcessExit } | { error: StartError };

const [grace, path, ...args] = process.argv.slice(2);
const killGraceMs = Number(grace);
// Half-open: after an abort (the parent ends its side) the exit is still reported.
const lifeline = new Socket({ fd: 3, readable: true, writable: true, allowHalfOpen: true });
// Once the parent is gone there is no one to tell.
lifeline.on('error', () => undefined);
const report = (message: SupervisorMessage, then?: () => void) =>
  lifeline.write(`${JSON.stringify(message)}\n`, then);

// fd 3 is the lifeline: the command gets /dev/null there, so it can neither write nor hold it.
const child = spawn(path!, args, {
  detached: true,
  stdio: ['inherit', 'inherit', 'inherit', 'ignore'],
});
let exited = false;

child.once('spawn', () => report({ pid: child.pid! }));
child.once('error', (error: NodeJS.ErrnoException) =>
  report({ error: { code: error.code, message: error.message } }, () => process.exit(1)),
);
child.once('exit', (code, signal: NodeJS.Signals | null) => {
  exited = true;
  // What the leader leaves running when it exits would be orphaned: it goes with it.
  killGroup(child.pid!, 'SIGKILL');
  report({ exit: { code, signal } }, () => process.exit(0));
});

const stop = () => {
  if (exited || child.pid === undefined) return;
  killGroup(child.pid, 'SIGTERM');
  setTimeout(() => killGroup(child.pid!, 'SIGKILL'), killGraceMs).unref();
};
lifeline.once('end', stop);
lifeline.once('close', stop);
// Read to see the end; the parent never writes.
lifeline.resume();
