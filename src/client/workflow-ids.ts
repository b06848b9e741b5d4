/**
 * Workflow ids made from registry keys. They stay readable (`delete-record:<key>`), but a key of
 * 512 characters may take 1,536 bytes of UTF-8 and the server refuses ids over 1,000 bytes
 * (`limit.maxIDLength`). Such an id keeps the key's beginning and ends with a SHA-256 digest of
 * the whole id, so two keys that share the kept part still get two ids.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TASK_QUEUE } from '../shared.ts';

/** The server's default `limit.maxIDLength`, in bytes. */
export const MAX_WORKFLOW_ID_BYTES = 1000;
/** `#` and 32 hex characters (128 bits of SHA-256). */
const DIGEST_BYTES = 33;

/** `id` itself when the server takes it; otherwise its longest whole-character beginning that fits, and its digest. */
export function boundedWorkflowId(id: string): string {
  if (Buffer.byteLength(id) <= MAX_WORKFLOW_ID_BYTES) return id;
  const digest = createHash('sha256').update(id).digest('hex').slice(0, 32);
  let kept = '';
  let bytes = 0;
  for (const char of id) {
    const size = Buffer.byteLength(char);
    if (bytes + size > MAX_WORKFLOW_ID_BYTES - DIGEST_BYTES) break;
    kept += char;
    bytes += size;
  }
  return `${kept}#${digest}`;
}

/** Ids carry the task queue when it is not the default, so registries (or tests) sharing a namespace never meet. */
const withQueue = (kind: string, taskQueue: string, subject: string) =>
  boundedWorkflowId(taskQueue === DEFAULT_TASK_QUEUE ? `${kind}:${subject}` : `${kind}:${taskQueue}:${subject}`);

/** Workflow id of a record deletion: one per key, so a repeated delete finds the running one. */
export const deleteRecordWorkflowId = (key: string, taskQueue = DEFAULT_TASK_QUEUE): string => withQueue('delete-record', taskQueue, key);

/**
 * The coalescing follow-up workflow of a data source: one per data source, long-lived. Workers on
 * another task queue than the default (another registry sharing the namespace, a test) get their own.
 */
export const coalescerWorkflowId = (dataSourceKey: string, taskQueue = DEFAULT_TASK_QUEUE): string => withQueue('followup', taskQueue, dataSourceKey);

/** A registry operation's workflow id: its kind, its record or data source, and a random suffix (each call is its own operation). */
export const registryOperationWorkflowId = (kind: string, subject: string, suffix: string): string =>
  boundedWorkflowId(`registry-op:${kind}:${subject}:${suffix}`);
