import type { RetryPolicy } from '@temporalio/common';
import { ERROR_TYPES } from '../shared.ts';

/**
 * Activities that touch PostgreSQL retry until it answers again: unlimited attempts, backoff from 1 s, capped at
 * 30 s (the original worker re-polled its database every 30 s). Bad input is not retried.
 */
export const RETRY_FOREVER_CAPPED: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '30 seconds',
  nonRetryableErrorTypes: [ERROR_TYPES.invalidInput, ERROR_TYPES.recordNotFound, ERROR_TYPES.operationRefused],
};
