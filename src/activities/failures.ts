/** How activities report failures that retrying cannot mend: non-retryable, with the reason. */
import { ApplicationFailure } from '@temporalio/activity';
import { isDataError } from '../registry/quarantine.ts';
import { OperationRefused, RecordMissing } from '../registry/registry-operations.ts';
import { ERROR_TYPES } from '../shared.ts';

/** Runs `fn`; a refused operation or data PostgreSQL refuses becomes a non-retryable failure naming it. */
export async function failingFastOnBadData<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RecordMissing) throw ApplicationFailure.create({ message: err.message, type: ERROR_TYPES.recordNotFound, nonRetryable: true });
    if (err instanceof OperationRefused) throw ApplicationFailure.create({ message: err.message, type: ERROR_TYPES.operationRefused, nonRetryable: true });
    // Two attempts of one operation racing on its own idempotency key: the retry finds the first's outcome.
    if (isOwnIdempotencyRace(err)) throw err;
    if (isDataError(err)) {
      const e = err as Error & { code: string; detail?: string };
      throw ApplicationFailure.create({
        message: `PostgreSQL refused the data (SQLSTATE ${e.code}): ${e.message}${e.detail ? ` (${e.detail})` : ''}`,
        type: ERROR_TYPES.dataRejected,
        nonRetryable: true,
      });
    }
    throw err;
  }
}

/** The same activities, each failing fast (non-retryable, naming the reason) on data PostgreSQL refuses. */
export function eachFailingFastOnBadData<T extends object>(activities: T): T {
  const wrapped = Object.entries(activities).map(([name, fn]: [string, (...args: unknown[]) => Promise<unknown>]) => [
    name,
    (...args: unknown[]) => failingFastOnBadData(() => fn(...args)),
  ]);
  return Object.fromEntries(wrapped) as T;
}

/** A unique violation on the bookkeeping keys that make activities idempotent (retryable, not bad data). */
function isOwnIdempotencyRace(err: unknown): boolean {
  const e = err as { code?: string; constraint?: string } | undefined;
  return (
    e?.code === '23505' && /^(registry_operations|followup_batch_results|followup_items|task_keys|task_dependants|task_outcomes)_pkey$/.test(e.constraint ?? '')
  );
}
