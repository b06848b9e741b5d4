/** Updates and queries of the workflows: imported by the client too, so no activity proxies here. */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { DeletionOutcome, FollowUpProgress } from '../shared.ts';

/** Answers once the record is gone and its follow-up is recorded; the caller's only wait. */
export const deleteRecordUpdate = defineUpdate<DeletionOutcome>('deleteRecord');
/** Progress of a deletion's follow-up. */
export const deleteProgressQuery = defineQuery<FollowUpProgress>('progress');
