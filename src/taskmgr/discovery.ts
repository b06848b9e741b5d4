/**
 * Task modules: one file per method in src/tasks (`generate_cache.ts` is GENERATE_CACHE).
 * Files whose names begin with `_` are disabled. Modules are loaded and validated once, when
 * the worker starts: a broken module stops the worker with a message naming it, instead of
 * surfacing later as a "function not defined" while a task runs.
 */
import { UserError, SetupError } from '../user-error.ts';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { PROJECT_ROOT } from '../config.ts';
import { parseDuration } from './duration.ts';
import { moduleToMethod } from './input.ts';
import type { TaskDefinition } from './types.ts';

export const TASKS_DIR = path.join(PROJECT_ROOT, 'src', 'tasks');
const MODULE_FILE = /^[a-z][a-z0-9_]*\.ts$/;

export interface TaskFiles {
  available: string[];
  disabled: string[];
}

/** Method names from file names alone (no import): what clients offer and validate against. */
export function listTaskFiles(dir = TASKS_DIR): TaskFiles {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
  return {
    available: files
      .filter((f) => MODULE_FILE.test(f))
      .map(moduleToMethod)
      .sort(),
    disabled: files
      .filter((f) => f.startsWith('_'))
      .map((f) => moduleToMethod(f.slice(1)))
      .sort(),
  };
}

export class UnknownTaskMethodError extends UserError {
  override name = 'UnknownTaskMethod';
}

/** The message for a method that cannot run, listing the ones that can. */
export function unknownMethodMessage(method: string, files: TaskFiles): string {
  const why = files.disabled.includes(method)
    ? `task method ${method} is disabled (its file begins with "_")`
    : `unknown task method ${JSON.stringify(method)}`;
  return `${why}; available methods: ${files.available.join(', ') || '(none)'}`;
}

/** Throws UnknownTaskMethodError unless `method` has an enabled module. */
export function assertAvailable(method: string, files: TaskFiles = listTaskFiles()): void {
  if (!files.available.includes(method)) throw new UnknownTaskMethodError(unknownMethodMessage(method, files), { field: 'method', allowed: files.available });
}

const definitionSchema = z.object({
  description: z.string().min(1),
  run: z.custom<TaskDefinition['run']>((v) => typeof v === 'function', 'run must be a function (ctx) => Promise<output>'),
  timeout: z.string().optional(),
  heartbeatTimeout: z.string().optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  retryOnError: z.boolean().optional(),
});

export class TaskDiscoveryError extends SetupError {
  override name = 'TaskDiscoveryError';
}

export interface LoadedTasks {
  files: TaskFiles;
  definitions: Map<string, TaskDefinition & { timeoutMs: number; heartbeatTimeoutMs: number }>;
}

/** Loads and validates every enabled task module; throws TaskDiscoveryError listing each problem. */
export async function loadTasks(dir = TASKS_DIR): Promise<LoadedTasks> {
  const files = listTaskFiles(dir);
  const problems: string[] = [];
  const definitions: LoadedTasks['definitions'] = new Map();
  const stray = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.startsWith('_') && !MODULE_FILE.test(f));
  for (const f of stray) problems.push(`${f}: task file names are lower case letters, digits and _ (e.g. generate_cache.ts)`);
  for (const method of files.available) {
    const file = path.join(dir, `${method.toLowerCase()}.ts`);
    try {
      const mod = await import(pathToFileURL(file).href);
      const parsed = definitionSchema.safeParse(mod.default);
      if (!parsed.success) {
        problems.push(
          `${path.basename(file)}: the default export must be defineTask({ description, run }): ${parsed.error.issues.map((i) => `${i.path.join('.') || 'export'}: ${i.message}`).join('; ')}`,
        );
        continue;
      }
      const def = mod.default as TaskDefinition;
      const timeoutMs = def.timeout ? parseDuration(def.timeout, `${path.basename(file)} timeout`) : 3_600_000;
      // Heartbeats go out every 2 s while a task runs.
      const heartbeatTimeoutMs = def.heartbeatTimeout ? parseDuration(def.heartbeatTimeout, `${path.basename(file)} heartbeatTimeout`) : 30_000;
      if (heartbeatTimeoutMs < 5000) throw new Error(`heartbeatTimeout "${def.heartbeatTimeout}" must be at least 5 seconds (heartbeats go out every 2 s)`);
      definitions.set(method, { ...def, timeoutMs, heartbeatTimeoutMs });
    } catch (err) {
      problems.push(`${path.basename(file)}: ${(err as Error).message}`);
    }
  }
  if (problems.length) throw new TaskDiscoveryError(`invalid task modules in ${dir}:\n  ${problems.join('\n  ')}`);
  return { files, definitions };
}
