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
    if (isDataError(err)) {
      const e = err as Error & { code: string; detail?: string };
      throw ApplicationFailure.create({ message: `PostgreSQL refused the data (SQLSTATE ${e.code}): ${e.message}${e.detail ? ` (${e.detail})` : ''}`, type: ERROR_TYPES.dataRejected, nonRetryable: true });
    }
    throw err;
  }
}
