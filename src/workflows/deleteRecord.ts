import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import {
  DataSourceKeyKey,
  ERROR_TYPES,
  RegistryObjectKeysKey,
  TaskMethodKey,
  TaskStatusKey,
  checkRecordKey,
  type DeleteRecordInput,
  type DeleteRecordResult,
  type DeletionOutcome,
  type FollowUpProgress,
} from '../shared.ts';
import { deleteProgressQuery, deleteRecordUpdate, followUpRequestSignal } from './definitions.ts';
import { COALESCE_PATCH, type CoalescerSettings } from './coalesce-settings.ts';
import { followUp } from './followup.ts';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import { RETRY_FOREVER_CAPPED } from './retry.ts';
import { upsertChangedSearchAttributes } from './search-attributes.ts';

const {
  deleteRecord: deleteRecordActivity,
  completeOperation,
  handOffFollowUp,
} = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: RETRY_FOREVER_CAPPED,
});
// From the coalescing version on, the delete itself is a local activity: it runs on the worker that
// holds the workflow task, so the caller's answer waits for one round trip less.
const local = proxyLocalActivities<Activities>({ startToCloseTimeout: '2 minutes', retry: RETRY_FOREVER_CAPPED });

const DEFAULT_BATCH_SIZE = 500;
/** From this version on, only the first update gets the initial delete's outcome. */
const ONE_INITIAL_PATCH = 'one-update-per-initial-delete';
/**
 * From this version on, a run's deletes go one at a time, in the order asked. Run side by side, a
 * later update's delete could beat the initial one to the row: the first caller was then told
 * RecordNotFound and the run's result said nothing was deleted.
 */
const SERIAL_DELETES_PATCH = 'deletes-one-at-a-time';
/**
 * From this version on, the caller is answered before the coalescer is woken: the local activity
 * deletes and queues the follow-up in PostgreSQL, and the workflow signals the coalescer after.
 * Before, the signal-with-start was a round trip to the server inside the caller's answer.
 */
const WAKE_AFTER_ANSWER_PATCH = 'wake-coalescer-after-answer';
/**
 * From this version on, a deletion asks for this one patch and takes the four above as given (it
 * asked three of them, four with a second delete). Each patch a new execution asks for records a
 * marker and an upsert of TemporalChangeVersion, a write of the visibility record. Those of its
 * search attributes its starter set are not upserted again, and its data source is shown with its
 * end: a deletion from the client writes the visibility record twice where it wrote six times.
 */
const ONE_PATCH = 'deletion-one-patch';
const DEFAULT_CONCURRENCY = 2;

/** What one deleteRecord execution keeps while it runs: its deletes, their follow-ups, its progress. */
interface Deletion {
  input: DeleteRecordInput;
  key: string;
  pending: DeletionOutcome[];
  progress: FollowUpProgress;
  rounds: number;
  /** Started on ONE_PATCH's version or later: the patches before it hold without being asked. */
  current: boolean;
  /** The delete the execution started with, until an update takes it. */
  initial?: Promise<DeletionOutcome>;
  /** The last delete asked for: the next one waits for it. */
  lastDelete?: Promise<unknown>;
  /** Wake-ups of the coalescer under way (from WAKE_AFTER_ANSWER_PATCH on): the run ends after them. */
  wakes: Promise<void>[];
  /**
   * Whether this execution hands its follow-ups to the coalescer, decided by its first delete. Asked
   * once: `patched` answers true to a run from before it once replay is over, and a later delete of
   * such a run must still follow up here, as its main body does.
   */
  coalesces?: boolean;
}

/** Whether the execution coalesces (COALESCE_PATCH), as its first delete found. */
function coalesces(deletion: Deletion): boolean {
  deletion.coalesces ??= deletion.current || patched(COALESCE_PATCH);
  return deletion.coalesces;
}

/**
 * Deletes one registry record, then rechecks, reindexes and re-caches every record related to it.
 *
 * Callers use update-with-start (`deleteRecordUpdate`): the update returns when the delete has
 * committed, and because the update runs inside this already-started workflow, the follow-up
 * cannot be lost between the two. Started plainly (temporal CLI), it does the same work with
 * nobody waiting. A later update on a running instance deletes again (the key may have been
 * re-created) and queues that follow-up too.
 */
export async function deleteRecord(input: DeleteRecordInput): Promise<DeleteRecordResult> {
  const bad = checkRecordKey(input?.key);
  if (bad) throw ApplicationFailure.create({ message: bad, type: ERROR_TYPES.invalidInput, nonRetryable: true });
  const { key } = input;
  const deletion: Deletion = {
    input,
    key,
    // Asked once, first: a replay of an execution from before it answers false, and its own patches decide.
    current: patched(ONE_PATCH),
    pending: [],
    progress: { key, phase: 'deleting', affected: 0, batchesTotal: 0, batchesDone: 0 },
    rounds: 0,
    wakes: [],
  };
  // Set here too, not only by the client, so a start from the temporal CLI is listed the same way.
  const started = [
    { key: TaskMethodKey, value: 'DELETE_RECORD' },
    { key: TaskStatusKey, value: 'STARTED' },
    { key: RegistryObjectKeysKey, value: [key] },
  ];
  if (deletion.current) upsertChangedSearchAttributes(started);
  else upsertSearchAttributes(started);
  const first = (deletion.initial = deleteOnce(deletion));
  setHandler(deleteRecordUpdate, () => answerDeleteUpdate(deletion));
  setHandler(deleteProgressQuery, () => deletion.progress);
  // Executions started before coalescing run their follow-up themselves, as they recorded.
  const coalesce = coalesces(deletion);

  // A current execution shows its data source with its end, COMPLETED or FAILED, in one upsert.
  let shownAtEnd: SearchAttributeUpdatePair[] = [];
  try {
    const firstOutcome = await first;
    const dataSource = firstOutcome.deleted && firstOutcome.dataSourceKey ? [{ key: DataSourceKeyKey, value: firstOutcome.dataSourceKey }] : [];
    if (deletion.current) shownAtEnd = dataSource;
    else if (dataSource.length) upsertSearchAttributes(dataSource);
    const result: DeleteRecordResult = { ...firstOutcome, qualityChanges: {}, reindexed: 0, recached: 0 };
    deletion.progress.phase = 'following-up';
    if (coalesce) await awaitHandOffs(deletion, result);
    else await followUpHere(deletion, result);
    if (!firstOutcome.deleted && deletion.rounds === 1) throw recordNotFound(key);
    upsertSearchAttributes([{ key: TaskStatusKey, value: 'COMPLETED' }, ...shownAtEnd]);
    return result;
  } catch (err) {
    upsertSearchAttributes([{ key: TaskStatusKey, value: 'FAILED' }, ...shownAtEnd]);
    throw err;
  }
}

/**
 * Deletes the record once more, after the deletes asked before it (from SERIAL_DELETES_PATCH on).
 * The patch is asked only from the second delete: a run of one delete records no marker for it.
 */
function deleteOnce(deletion: Deletion): Promise<DeletionOutcome> {
  const previous = deletion.lastDelete;
  const afterPrevious = () => deleteNow(deletion);
  // Unpatched (a run from before): side by side, as it was recorded.
  const next = previous && (deletion.current || patched(SERIAL_DELETES_PATCH)) ? previous.then(afterPrevious, afterPrevious) : deleteNow(deletion);
  deletion.lastDelete = next;
  return next;
}

/** Deletes the record (it may have been re-created since the last delete) and queues the follow-up it needs. */
async function deleteNow(deletion: Deletion): Promise<DeletionOutcome> {
  const { input, key, progress } = deletion;
  deletion.rounds += 1;
  const { workflowId, runId } = workflowInfo();
  const opId = `${workflowId}/${runId}/${deletion.rounds}`;
  // Only what the caller set: the rest comes from the workers' configuration.
  const args = { key, opId, batchSize: input.batchSize, settings: { batchSize: input.batchSize, concurrency: input.concurrency, ...input.coalesce } };
  let outcome: DeletionOutcome;
  if (!coalesces(deletion)) {
    outcome = await deleteRecordActivity({ key, opId, batchSize: input.batchSize ?? DEFAULT_BATCH_SIZE });
  } else if (!deletion.current && !patched(WAKE_AFTER_ANSWER_PATCH)) {
    // The delete and the hand-off to the data source's coalescer in one local activity.
    outcome = await local.deleteRecordAndHandOff(args);
  } else {
    const queued = await local.deleteRecordAndQueue(args);
    outcome = queued.outcome;
    if (queued.coalescerId) deletion.wakes.push(wakeCoalescer(queued.coalescerId, outcome, args.settings));
  }
  if (outcome.deleted) {
    deletion.pending.push(outcome);
    progress.affected += outcome.affected;
    progress.batchesTotal += outcome.batches;
    progress.opIds = [...(progress.opIds ?? []), outcome.opId];
    progress.dataSourceKey ??= outcome.dataSourceKey;
    if (outcome.plannedByRound) progress.plannedByRound = true;
  }
  return outcome;
}

/**
 * The update callers wait on. The first one (the one that started us) waits for the initial
 * delete; later ones delete again. Taken at once: of two concurrent deletes of one key, only the
 * first gets the initial one.
 */
async function answerDeleteUpdate(deletion: Deletion): Promise<DeletionOutcome> {
  let outcome: DeletionOutcome;
  if (deletion.current || patched(ONE_INITIAL_PATCH)) {
    const mine = deletion.initial;
    deletion.initial = undefined;
    outcome = await (mine ?? deleteOnce(deletion));
  } else {
    outcome = await (deletion.initial ?? deleteOnce(deletion));
    deletion.initial = undefined;
  }
  if (!outcome.deleted) throw recordNotFound(deletion.key);
  return outcome;
}

/**
 * Wakes the data source's coalescer for a queued deletion, after the caller's answer: a signal to
 * the running coalescer, or, when none runs (its first deletion, or after a termination), an
 * activity's signal-with-start.
 */
async function wakeCoalescer(coalescerId: string, op: DeletionOutcome, settings: Partial<CoalescerSettings>): Promise<void> {
  try {
    await getExternalWorkflowHandle(coalescerId).signal(followUpRequestSignal, { opId: op.opId });
  } catch {
    await handOffFollowUp({ op, settings });
  }
}

/** The follow-ups belong to the coalescer (RegistryClient.awaitDeletion asks it how they end): wait for the updates and the wake-ups only. */
async function awaitHandOffs(deletion: Deletion, result: DeleteRecordResult): Promise<void> {
  // An update may come while the wake-ups are awaited: wait until none is left of either.
  for (let woken = -1; woken !== deletion.wakes.length || !allHandlersFinished();) {
    await condition(allHandlersFinished);
    woken = deletion.wakes.length;
    await Promise.all(deletion.wakes);
  }
  const handedOff = deletion.pending.filter((op) => (op.batches > 0 || op.plannedByRound) && op.dataSourceKey);
  if (handedOff.length) result.coalesced = { dataSourceKey: handedOff[0]!.dataSourceKey!, opIds: handedOff.map((op) => op.opId) };
}

/** Executions from before coalescing: each delete's follow-up runs here, one after the other. */
async function followUpHere(deletion: Deletion, result: DeleteRecordResult): Promise<void> {
  const concurrency = deletion.input.concurrency ?? DEFAULT_CONCURRENCY;
  for (;;) {
    await condition(() => deletion.pending.length > 0 || allHandlersFinished());
    const op = deletion.pending.shift();
    if (!op) break;
    await followUp(op, concurrency, result, () => (deletion.progress.batchesDone += 1));
    await completeOperation(op.opId);
  }
  deletion.progress.phase = 'done';
}

function recordNotFound(key: string): ApplicationFailure {
  return ApplicationFailure.create({ message: `record ${JSON.stringify(key)} does not exist`, type: ERROR_TYPES.recordNotFound, nonRetryable: true });
}
