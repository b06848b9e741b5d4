/**
 * The registryTask input, as plain JSON from any caller (client, CLI, HTTP, `temporal workflow
 * start --input`), and its validation. Pure and deterministic: the workflow validates again.
 */
import { UserError } from '../user-error.ts';
import { checkRecordKey, controlCharacterAt, utf8Length } from '../shared.ts';
import { DurationError, parseDuration, resolveScheduledFor } from './duration.ts';

export interface TaskInput {
  method: string;
  logMessage?: string;
  registryObjectKeys?: string[];
  dataSourceKey?: string;
  prerequisiteTaskId?: string;
  /** A delay ("15 seconds", "1 hour", "7 days") or an ISO timestamp. */
  scheduledFor?: string;
  /** Run again this long after each run ends ("1 hour"). */
  recurEvery?: string;
  /**
   * Set by TaskClient when the keys were too many to travel in the input: it stored them in
   * PostgreSQL (task_keys) under the task's id, and the workflow checks this many are there.
   */
  storedKeyCount?: number;
  /** Set by the workflow itself when it continues as new; callers leave it out. */
  loop?: LoopState;
  /** Set by the workflow when it continues as new while WAITING; callers leave it out. */
  resume?: WaitResume;
}

/** A WAITING task's state carried across continue-as-new (long waits keep each run's history small). */
export interface WaitResume {
  addedAt: string;
  /** Epoch ms of the scheduled start, as resolved (a relative "1 hour" must not restart). */
  scheduledAt?: number;
  /** Holds the (method, data source) WAITING slot. */
  claimed: boolean;
  /** Adds merged into the task in its earlier runs. */
  mergedAdds?: number;
}

export interface RunSummary {
  iteration: number;
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  startedAt?: string;
  completedAt: string;
  output?: unknown;
  error?: string;
}

export interface LoopState {
  iteration: number;
  firstAddedAt: string;
  /** Absolute time of the next run, computed by the previous iteration. */
  nextRunAt: string;
  recentRuns: RunSummary[];
}

export const TASK_LIMITS = {
  /** Keys one task may name (each up to MAX_KEY_LENGTH characters); larger sets are split into several tasks. */
  maxKeys: 10_000,
  /** Keys above this many bytes of input travel through PostgreSQL rather than in the workflow input (TaskClient). */
  maxInlineKeyBytes: 128 * 1024,
  maxLogMessage: 10_000,
  maxIdLength: 255,
  minRecurMs: 50,
  /** Temporal refuses payloads over 2 MB and warns from 256 KB: a task's input stays well below. */
  maxInputBytes: 1024 * 1024,
  maxRecurMs: 366 * 86_400_000,
};

const METHOD_RE = /^[A-Z][A-Z0-9_]{0,63}$/;
/** Control characters: none in ids and schedules; in a log message, tab and line breaks. */
const NO_CONTROLS = '';
const TEXT_CONTROLS = '\t\n\r';

const KNOWN_FIELDS = new Set([
  'method',
  'logMessage',
  'registryObjectKeys',
  'dataSourceKey',
  'prerequisiteTaskId',
  'scheduledFor',
  'recurEvery',
  'storedKeyCount',
  'loop',
  'resume',
]);
/** Fields the workflow sets for itself. */
const INTERNAL_FIELDS = new Set(['loop', 'resume']);

export class TaskInputError extends UserError {
  override name = 'TaskInputError';
  declare readonly field: string;
  constructor(field: string, message: string) {
    super(message, { field });
  }
}

/**
 * Checks a task input; throws TaskInputError naming the field, the bad value and what is allowed.
 * `now` resolves relative schedules; `ownId` catches a task named as its own prerequisite.
 */
export function validateTaskInput(
  raw: unknown,
  now: number,
  ownId?: string,
  { textChecks = true }: { textChecks?: boolean } = {},
): TaskInput & { scheduledAt?: number; recurMs?: number } {
  const input = inputObject(raw);
  const method = methodOf(input);
  // Off only where a workflow replays (or goes on with) an input admitted before control characters were refused.
  const controls = textChecks ? { ids: NO_CONTROLS, text: TEXT_CONTROLS } : undefined;
  const logMessage = optionalString(input, 'logMessage', TASK_LIMITS.maxLogMessage, controls?.text);
  const ids = idFields(input, ownId, controls?.ids);
  const keys = keyFields(input);
  const times = timeFields(input, now, controls?.ids);
  checkInputSize(input);
  return {
    method,
    logMessage,
    ...ids,
    ...keys,
    ...times,
    loop: input.loop as LoopState | undefined,
    resume: input.resume as WaitResume | undefined,
  };
}

function inputObject(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TaskInputError('input', `task input must be a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const input = raw as Record<string, unknown>;
  const unknown = Object.keys(input).filter((k) => !KNOWN_FIELDS.has(k));
  if (unknown.length)
    throw new TaskInputError(
      unknown[0]!,
      `unknown field ${JSON.stringify(unknown[0])}; allowed: ${[...KNOWN_FIELDS].filter((f) => !INTERNAL_FIELDS.has(f)).join(', ')}`,
    );
  return input;
}

function methodOf(input: Record<string, unknown>): string {
  const { method } = input;
  if (typeof method !== 'string' || !METHOD_RE.test(method)) {
    throw new TaskInputError('method', `method ${JSON.stringify(method)} is not a task method name (upper case letters, digits and _, e.g. GENERATE_CACHE)`);
  }
  return method;
}

/** A string field within its length; control characters refused but those allowed (none checked when `allowedControls` is undefined). */
function optionalString(input: Record<string, unknown>, field: string, max: number, allowedControls: string | undefined): string | undefined {
  const v = input[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new TaskInputError(field, `${field} must be a string, got ${typeof v}`);
  if (v.length > max) throw new TaskInputError(field, `${field} is ${v.length} characters long; at most ${max} are allowed`);
  // PostgreSQL refuses NUL in text, and the ids and keys name things: refused here, not by a retried activity.
  const at = allowedControls === undefined ? -1 : controlCharacterAt(v, allowedControls);
  if (at >= 0)
    throw new TaskInputError(
      field,
      `${field} contains the control character U+${v.charCodeAt(at).toString(16).padStart(4, '0').toUpperCase()} at position ${at}; ${allowedControls ? 'only tab and line breaks are' : 'none are'} allowed`,
    );
  return v;
}

function idFields(
  input: Record<string, unknown>,
  ownId: string | undefined,
  controls: string | undefined,
): { dataSourceKey?: string; prerequisiteTaskId?: string } {
  const dataSourceKey = optionalString(input, 'dataSourceKey', TASK_LIMITS.maxIdLength, controls);
  if (dataSourceKey !== undefined && dataSourceKey.trim() === '') throw new TaskInputError('dataSourceKey', 'dataSourceKey must not be empty');
  const prerequisiteTaskId = optionalString(input, 'prerequisiteTaskId', TASK_LIMITS.maxIdLength, controls);
  if (prerequisiteTaskId !== undefined && prerequisiteTaskId.trim() === '')
    throw new TaskInputError('prerequisiteTaskId', 'prerequisiteTaskId must not be empty');
  if (prerequisiteTaskId !== undefined && prerequisiteTaskId === ownId) {
    throw new TaskInputError('prerequisiteTaskId', `task ${JSON.stringify(ownId)} cannot be its own prerequisite`);
  }
  return { dataSourceKey, prerequisiteTaskId };
}

/** The keys in the input, or how many TaskClient stored in PostgreSQL: not both. */
function keyFields(input: Record<string, unknown>): { registryObjectKeys?: string[]; storedKeyCount?: number } {
  let registryObjectKeys: string[] | undefined;
  const keys = input.registryObjectKeys;
  if (keys !== undefined && keys !== null) {
    if (!Array.isArray(keys)) throw new TaskInputError('registryObjectKeys', `registryObjectKeys must be an array of record keys, got ${typeof keys}`);
    registryObjectKeys = validateTaskKeys(keys);
  }
  const storedKeyCount = input.storedKeyCount;
  if (storedKeyCount !== undefined && storedKeyCount !== null) {
    if (!Number.isInteger(storedKeyCount) || (storedKeyCount as number) < 1 || (storedKeyCount as number) > TASK_LIMITS.maxKeys) {
      throw new TaskInputError('storedKeyCount', `storedKeyCount ${JSON.stringify(storedKeyCount)} must be a whole number from 1 to ${TASK_LIMITS.maxKeys}`);
    }
    if (registryObjectKeys)
      throw new TaskInputError('storedKeyCount', 'give either registryObjectKeys or storedKeyCount (keys stored by TaskClient), not both');
  }
  return { registryObjectKeys, storedKeyCount: storedKeyCount as number | undefined };
}

/** The schedule (a delay or a time, resolved against `now`) and the recurrence, within their limits. */
function timeFields(
  input: Record<string, unknown>,
  now: number,
  controls: string | undefined,
): { scheduledFor?: string; scheduledAt?: number; recurEvery?: string; recurMs?: number } {
  let scheduledAt: number | undefined;
  const scheduledFor = optionalString(input, 'scheduledFor', 100, controls);
  let recurMs: number | undefined;
  const recurEvery = optionalString(input, 'recurEvery', 100, controls);
  const asInputError = <T>(field: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof DurationError) throw new TaskInputError(field, err.message);
      throw err;
    }
  };
  if (scheduledFor !== undefined) scheduledAt = asInputError('scheduledFor', () => resolveScheduledFor(scheduledFor, now));
  if (recurEvery !== undefined) {
    recurMs = asInputError('recurEvery', () => parseDuration(recurEvery, 'recurEvery'));
    if (recurMs < TASK_LIMITS.minRecurMs || recurMs > TASK_LIMITS.maxRecurMs) {
      throw new TaskInputError('recurEvery', `recurEvery ${JSON.stringify(recurEvery)} must be from ${TASK_LIMITS.minRecurMs} milliseconds to 366 days`);
    }
  }
  return { scheduledFor, scheduledAt, recurEvery, recurMs };
}

/** Each field is within its limit; together they must still fit a Temporal payload. */
function checkInputSize(input: Record<string, unknown>) {
  const { loop: _loop, resume: _resume, ...own } = input; // the workflow's own state, kept small by it
  const bytes = utf8Length(JSON.stringify(own) ?? '');
  if (bytes > TASK_LIMITS.maxInputBytes) {
    throw new TaskInputError(
      'input',
      `the task input is ${bytes} bytes; at most ${TASK_LIMITS.maxInputBytes} travel in a workflow input (TaskClient, taskmgr and the HTTP API store up to ${TASK_LIMITS.maxKeys} keys in PostgreSQL instead; or use a dataSourceKey instead of keys)`,
    );
  }
}

/** Checks a task's record keys (count and each key); returns them without repeats. */
export function validateTaskKeys(keys: unknown[]): string[] {
  if (keys.length > TASK_LIMITS.maxKeys)
    throw new TaskInputError(
      'registryObjectKeys',
      `registryObjectKeys has ${keys.length} keys; at most ${TASK_LIMITS.maxKeys} are allowed (split the keys over several tasks, or use dataSourceKey for a whole data source)`,
    );
  keys.forEach((k, i) => {
    const bad = checkRecordKey(k);
    if (bad) throw new TaskInputError('registryObjectKeys', `registryObjectKeys[${i}]: ${bad}`);
  });
  return [...new Set(keys as string[])];
}

/** File name of a task module for a method: GENERATE_CACHE -> generate_cache. */
export const methodToModule = (method: string) => method.toLowerCase();
/** Method of a task module file: generate_cache.ts -> GENERATE_CACHE. */
export const moduleToMethod = (file: string) => file.replace(/\.(ts|js|mjs)$/, '').toUpperCase();
