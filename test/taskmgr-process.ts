/** `taskmgr` as a user runs it: a command to completion, or a worker process, each with an environment of its own. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
export const TASKMGR_BIN = path.join(import.meta.dirname, '..', 'bin', 'taskmgr.js');

/** The environment without the variables set to undefined (unset for the child). */
const defined = (env: Record<string, string | undefined>) =>
  Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;

/** Runs `taskmgr ARGS`: its exit code, its whole output (stdout then stderr), and stdout alone (for --json). */
export async function runTaskmgr(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; out: string; stdout: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [TASKMGR_BIN, ...args], { env: defined(env), timeout: 120_000 });
    return { code: 0, out: `${stdout}${stderr}`, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}`, stdout: e.stdout };
  }
}

export interface TaskmgrProcess {
  child: ChildProcess;
  /** Resolves with the exit code and the output once the process exits. */
  exited: Promise<{ code: number | null; output: string }>;
  /** Everything printed so far (stdout, then stderr, as they came). */
  output(): string;
}

/** Starts a long-running `taskmgr COMMAND` (worker, serve) with `env` as its whole environment. */
export function startTaskmgr(command: string, env: Record<string, string | undefined>): TaskmgrProcess {
  const child = spawn(process.execPath, [TASKMGR_BIN, command], { env: defined(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.once('exit', (code) => resolve({ code, output })));
  return { child, exited, output: () => output };
}

/** Starts `taskmgr worker` (without a metrics endpoint unless `env` names one). */
export function startTaskmgrWorker(env: Record<string, string | undefined>): TaskmgrProcess {
  return startTaskmgr('worker', { METRICS_ADDRESS: 'off', ...env });
}

/** The environment of a `taskmgr worker` on a test server: its database and task queue, warnings only. */
export function testWorkerEnv(databaseUrl: string, temporalAddress: string, taskQueue: string): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LOG_LEVEL: 'warn',
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_TASK_QUEUE: taskQueue,
  };
}
