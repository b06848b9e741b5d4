/** Child processes of a cluster: output to a log file each, stopped with SIGTERM then SIGKILL. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  running(): boolean;
  /** The last lines of its log, for error messages. */
  tail(lines?: number): string;
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(name: string, command: string, args: string[], opts: { logDir: string; env?: NodeJS.ProcessEnv; cwd?: string }): ManagedProcess {
  fs.mkdirSync(opts.logDir, { recursive: true });
  const logFile = path.join(opts.logDir, `${name}.log`);
  const out = fs.openSync(logFile, 'a');
  // Its own process group: a Ctrl-C in the terminal reaches us, and we stop the children in order.
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    child,
    logFile,
    exited,
    running,
    tail(lines = 15) {
      const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    },
    async stop(graceMs = 20_000) {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Waits until `url` answers 2xx, failing at once (with its log's tail) if `process` exits first. */
export async function untilHttpOk(url: string, process: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!process.running()) throw new Error(`${process.name} exited before answering on ${url} (log ${process.logFile}):\n${process.tail()}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`${process.name} did not answer on ${url} within ${timeoutMs / 1000} s (log ${process.logFile})`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
