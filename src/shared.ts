/**
 * Names and payload types shared by the client, the workflows and the activities.
 * Deterministic-safe: imported by workflow code, so no Node built-ins here.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEFAULT_TASK_QUEUE = 'registry-tasks';
/** An add merges only into a WAITING task that starts within this long of when the add asked to start. */
export const MERGE_WINDOW_MS = 60_000;

/** Task modules run on a queue of their own (own slots), so long tasks never hold up follow-ups. */
export const taskRunQueue = (taskQueue: string) => `${taskQueue}-runs`;

/** Custom search attributes: registered on the dev server by `npm start` and the tests. */
export const TaskMethodKey = defineSearchAttributeKey('TaskMethod', SearchAttributeType.KEYWORD);
export const TaskStatusKey = defineSearchAttributeKey('TaskStatus', SearchAttributeType.KEYWORD);
export const DataSourceKeyKey = defineSearchAttributeKey('DataSourceKey', SearchAttributeType.KEYWORD);
export const RegistryObjectKeysKey = defineSearchAttributeKey('RegistryObjectKeys', SearchAttributeType.KEYWORD_LIST);
export const SEARCH_ATTRIBUTES = [TaskMethodKey, TaskStatusKey, DataSourceKeyKey, RegistryObjectKeysKey];

/**
 * A Temporal server refuses a search attribute value over 2 KB
 * (`frontend.searchAttributesSizeOfValueLimit`); the list is JSON-encoded, so this budget leaves room.
 */
export const SEARCH_ATTRIBUTE_VALUE_BUDGET = 1900;

/** The leading keys whose JSON list fits one search attribute value; the rest are found through PostgreSQL. */
export function keysForSearchAttribute(keys: readonly string[]): string[] {
  const fitting: string[] = [];
  let bytes = 2; // []
  for (const key of keys) {
    bytes += utf8Length(JSON.stringify(key)) + (fitting.length ? 1 : 0);
    if (bytes > SEARCH_ATTRIBUTE_VALUE_BUDGET) break;
    fitting.push(key);
  }
  return fitting;
}

/** UTF-8 size of a string (no Buffer: workflows use this too). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      n += 4; // a surrogate pair: one 4-byte character
      i += 1;
    } else n += 3;
  }
  return n;
}

export const TASK_STATUSES = ['WAITING', 'STARTED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const RECORD_CLASSES = ['collection', 'party', 'activity', 'service'] as const;
export type RecordClass = (typeof RECORD_CLASSES)[number];

/** Registry object keys: RIF-CS keys are free text, but bounded and never blank. */
export const MAX_KEY_LENGTH = 512;

/** Returns an error message for a bad record key, or undefined when the key is acceptable. */
/** A C0 or C1 control character, or DEL: a terminal may act on it, and PostgreSQL refuses NUL in text. */
export const isControlCharacter = (c: string): boolean => {
  const code = c.charCodeAt(0);
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
};

/** Where the first control character of `text` is, leaving out those in `allowed`; -1 when there is none. */
export function controlCharacterAt(text: string, allowed = ''): number {
  for (let i = 0; i < text.length; i++) if (isControlCharacter(text[i]!) && !allowed.includes(text[i]!)) return i;
  return -1;
}

export function checkRecordKey(key: unknown): string | undefined {
  if (typeof key !== 'string') return `record key must be a string, got ${key === null ? 'null' : typeof key}`;
  if (key.trim() === '') return 'record key must not be empty';
  if (key.length > MAX_KEY_LENGTH) return `record key is ${key.length} characters long; at most ${MAX_KEY_LENGTH} are allowed`;
  // C0 only (DEL and C1 pass): workflows check keys too, and their replays must see the rule they ran with.
  if (Array.from(key).some((c) => c.charCodeAt(0) < 0x20)) return `record key ${JSON.stringify(key)} contains control characters`;
  return undefined;
}

export interface DeleteRecordInput {
  key: string;
  /** Records per follow-up activity; defaults to the worker's configuration. */
  batchSize?: number;
  /** Batches processed at once. */
  concurrency?: number;
  /** Quiet period and maximum wait of the data source's coalescer (milliseconds). */
  coalesce?: { quietMs?: number; maxWaitMs?: number };
}

/** What the caller learns when the record is gone and its follow-up is durably under way. */
export interface DeletionOutcome {
  deleted: boolean;
  opId: string;
  key: string;
  dataSourceKey?: string;
  recordClass?: RecordClass;
  /** Related records to follow up (0 when `plannedByRound`: the round counts them; 0 and no follow-up for a record without relations). */
  affected: number;
  batches: number;
  /**
   * The follow-up is planned by the data source's coalescer after the answer: the delete's work did
   * not grow with the record's relations. The related records are counted on the operation then.
   */
  plannedByRound?: boolean;
}

/** Counts "from->to" level transitions, e.g. { "3->2": 812 }. */
export type LevelChanges = Record<string, number>;

export interface FollowUpBatchResult {
  records: number;
  changed: number;
  levelChanges?: LevelChanges;
}

export interface DeleteRecordResult extends DeletionOutcome {
  qualityChanges: LevelChanges;
  reindexed: number;
  recached: number;
  /** Operations whose follow-up ran in the same coalesced round (the totals are the round's). */
  coalescedWith?: number;
  /** Set by the workflow when it handed the follow-up to its data source's coalescer. */
  coalesced?: { dataSourceKey: string; opIds: string[] };
}

export interface FollowUpProgress {
  key: string;
  phase: 'deleting' | 'following-up' | 'done';
  affected: number;
  batchesTotal: number;
  batchesDone: number;
  /** The operations whose follow-up this is (several when the key was deleted again). */
  opIds?: string[];
  /** Their rounds plan them (DeletionOutcome.plannedByRound): affected and batches come from the rounds. */
  plannedByRound?: boolean;
  /** The deleted record's data source, whose coalescer follows up (absent in answers of workers from before it was reported). */
  dataSourceKey?: string;
}

export const ERROR_TYPES = {
  invalidInput: 'InvalidInput',
  recordNotFound: 'RecordNotFound',
  operationRefused: 'OperationRefused',
  /** PostgreSQL refused the data itself (SQLSTATE classes 21, 22, 23, 54): retrying cannot mend it. */
  dataRejected: 'DataRejected',
} as const;

export const RECORD_STATUSES = ['DRAFT', 'SUBMITTED_FOR_ASSESSMENT', 'ASSESSMENT_IN_PROGRESS', 'MORE_WORK_REQUIRED', 'APPROVED', 'PUBLISHED'] as const;
export type RecordStatus = (typeof RECORD_STATUSES)[number];

/** The registry's workflow of a record's status: draft -> assessment -> publish. */
export const STATUS_TRANSITIONS: Record<RecordStatus, RecordStatus[]> = {
  DRAFT: ['SUBMITTED_FOR_ASSESSMENT', 'APPROVED'],
  SUBMITTED_FOR_ASSESSMENT: ['ASSESSMENT_IN_PROGRESS', 'DRAFT'],
  ASSESSMENT_IN_PROGRESS: ['APPROVED', 'MORE_WORK_REQUIRED'],
  MORE_WORK_REQUIRED: ['DRAFT', 'SUBMITTED_FOR_ASSESSMENT'],
  APPROVED: ['PUBLISHED', 'DRAFT'],
  PUBLISHED: ['DRAFT'],
};

/** A harvested record: the fields of registry_objects plus its outbound relations. */
export interface HarvestedRecord {
  key: string;
  class: RecordClass;
  type?: string | null;
  group?: string | null;
  title?: string | null;
  description?: string | null;
  rights?: string | null;
  accessPolicy?: string | null;
  locationAddress?: string | null;
  electronicAddress?: string | null;
  identifiers?: string[];
  subjects?: string[];
  dates?: string[];
  spatialCoverage?: string | null;
  temporalCoverage?: string | null;
  citationInfo?: string | null;
  status?: RecordStatus;
  relations?: { key: string; type: string }[];
}

/** Registry operations other than a plain delete; each plans exactly the follow-up its change needs. */
export type RegistryOperation =
  | { kind: 'DELETE_DRAFT'; key: string }
  | { kind: 'CHANGE_STATUS'; key: string; to: RecordStatus }
  | { kind: 'IMPORT_RECORDS'; dataSourceKey: string; records: HarvestedRecord[] }
  | { kind: 'CLEAR_DATA_SOURCE'; dataSourceKey: string };

export interface OperationOutcome {
  opId: string;
  kind: RegistryOperation['kind'];
  dataSourceKey?: string;
  /** Records whose derived state the follow-up brings up to date. */
  affected: number;
  batches: number;
  /** Records changed by the operation itself (deleted, imported, moved to another status). */
  changed: number;
}

export const MAX_IMPORT_BATCH = 1000;
/** An import batch travels in a workflow input: 1 MB keeps it well inside Temporal's 2 MB payload limit. */
export const MAX_IMPORT_BYTES = 1024 * 1024;
