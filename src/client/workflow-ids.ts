/**
 * Workflow ids made from registry keys. They stay readable (`delete-record:<key>`), but a key may
 * be 512 characters: the server refuses ids over 1,000 bytes (`limit.maxIDLength`), and a server
 * on SQL persistence (the cluster, production) stores them in VARCHAR(255) columns, so a longer
 * id fails there with UNAVAILABLE after the server's retries. Such an id keeps its beginning and
 * ends with a SHA-256 digest of the whole id, so two keys that share the kept part still get two ids.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_TASK_QUEUE } from '../shared.ts';

/** The server's default `limit.maxIDLength`, in bytes. */
export const MAX_WORKFLOW_ID_BYTES = 1000;
/** The SQL persistence schema's `workflow_id VARCHAR(255)`, in characters (code points). */
export const MAX_WORKFLOW_ID_CHARS = 255;
/** `@` and 32 hex characters (128 bits of SHA-256); `@` keeps an ASCII id a plain query value. */
const DIGEST_LENGTH = 33;

const fits = (id: string) => Buffer.byteLength(id) <= MAX_WORKFLOW_ID_BYTES && [...id].length <= MAX_WORKFLOW_ID_CHARS;

/** `id` itself when every server takes it; otherwise its longest whole-character beginning that fits, and its digest. */
export function boundedWorkflowId(id: string): string {
  if (fits(id)) return id;
  const digest = createHash('sha256').update(id).digest('hex').slice(0, 32);
  let kept = '';
  let bytes = 0;
  let chars = 0;
  for (const char of id) {
    bytes += Buffer.byteLength(char);
    chars += 1;
    if (bytes > MAX_WORKFLOW_ID_BYTES - DIGEST_LENGTH || chars > MAX_WORKFLOW_ID_CHARS - DIGEST_LENGTH) break;
    kept += char;
  }
  return `${kept}@${digest}`;
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
