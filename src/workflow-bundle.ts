/**
 * The workflow bundle, made by a child process. Bundling runs webpack, and in the worker's own
 * process its memory stays: a worker that bundled for itself idles at about 440 MB of RSS, one
 * given the bundle at about 290 MB (`npm run bench`, the bench worker). The child costs the same
 * few seconds as bundling in process; it writes the bundle to a file the worker reads once.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode } from '@temporalio/worker';
import { temporalWorkerPlugins } from './telemetry/tracing.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
export const WORKFLOWS_PATH = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

/** Bundles workflows (the registry's by default) in a child process; resolves with the bundle file, which the caller removes once loaded. */
export async function bundleWorkflowsApart(workflowsPath = WORKFLOWS_PATH): Promise<{ codePath: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-bundle-'));
  const codePath = path.join(dir, 'workflows.js');
  // Workflow interceptors (tracing) are part of the bundle: the child is told which, as the plugins say.
  const interceptorModules = temporalWorkerPlugins().flatMap((p) => p.configureBundler?.({ workflowsPath }).workflowInterceptorModules ?? []);
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), THIS_FILE, workflowsPath, codePath, JSON.stringify(interceptorModules)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => child.once('error', reject).once('exit', resolve));
  if (code !== 0) throw new Error(`bundling the workflows failed (exit ${code}):\n${stderr.trim()}`);
  return { codePath };
}

/** Removes a bundle file of bundleWorkflowsApart and its folder. */
export function removeBundle(bundle: { codePath: string }): void {
  fs.rmSync(path.dirname(bundle.codePath), { recursive: true, force: true });
}

/** A logger for the SDK's bundler that keeps webpack's progress out of the output. */
export const QUIET_BUNDLER_LOGGER = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never;

async function bundleToFile(workflowsPath: string, codePath: string, interceptorModules: string[]): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: interceptorModules, logger: QUIET_BUNDLER_LOGGER });
  fs.writeFileSync(codePath, code);
}

// Run as the child: node --import tsx src/workflow-bundle.ts <workflows> <bundle file> <interceptor modules as JSON>.
if (process.argv[1] === THIS_FILE) await bundleToFile(process.argv[2]!, process.argv[3]!, JSON.parse(process.argv[4] ?? '[]') as string[]);
