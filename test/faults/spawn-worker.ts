/** A registry worker in a process of its own (test/fixtures/worker-process.ts), for tests that kill workers. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const WORKER_SCRIPT = path.join(import.meta.dirname, '..', 'fixtures', 'worker-process.ts');

/** A worker in its own process (with the fixture tasks); resolves once it polls. */
export function spawnWorker(env: Record<string, string>): Promise<{ child: ChildProcess; exited: Promise<NodeJS.Signals | number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('worker ready')) {
        clearTimeout(timer);
        resolve({ child, exited });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((how) => reject(new Error(`worker exited (${how}) before it was ready:\n${output}`)));
  });
}
