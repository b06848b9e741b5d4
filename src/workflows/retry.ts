import type { RetryPolicy } from '@temporalio/common';
import { ERROR_TYPES } from '../shared.ts';

/**
 * Activities that touch PostgreSQL retry until it answers again: unlimited attempts, backoff from 1 s, capped at
 * 30 s. Unbounded on purpose: what reaches a retry is an outage (PostgreSQL or Temporal away), and a registry
 * change must not be lost to one however long it lasts. Every error that retrying cannot mend is
 * non-retryable: bad input, a missing record, a refused operation, and data PostgreSQL refuses
 * (activities/failures.ts); a follow-up batch quarantines refused records instead of failing.
 */
export const RETRY_FOREVER_CAPPED: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  nonRetryableErrorTypes: [ERROR_TYPES.invalidInput, ERROR_TYPES.recordNotFound, ERROR_TYPES.operationRefused, ERROR_TYPES.dataRejected],
};
