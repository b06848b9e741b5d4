/** Updates and queries of the workflows: imported by the client too, so no activity proxies here. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DeletionOutcome, FollowUpProgress, OperationOutcome } from '../shared.ts';
import type { TaskAdmission, TaskInfo } from '../taskmgr/info.ts';

/** Answers once the record is gone and its follow-up is recorded; the caller's only wait. */
export const deleteRecordUpdate = defineUpdate<DeletionOutcome>('deleteRecord');
/** Progress of a deletion's follow-up. */
export const deleteProgressQuery = defineQuery<FollowUpProgress>('progress');

/** Signals, queries and updates of the `registryTask` workflow. */
export const taskInfoQuery = defineQuery<TaskInfo>('task');
/** Answers once the task is admitted: its id, or the id of the WAITING task it was merged into. */
export const taskAdmissionUpdate = defineUpdate<TaskAdmission>('admission');
/** Moves a WAITING task's start ("15 minutes" or an ISO time). */
export const rescheduleUpdate = defineUpdate<TaskInfo, [string]>('reschedule');
/** Merges a duplicate add into this WAITING task (its keys join this task's keys). */
export const mergeUpdate = defineUpdate<TaskInfo, [{ registryObjectKeys?: string[] }]>('merge');
/** A task that waits for this one: notified when this one ends. */
export const dependantSignal = defineSignal<[string]>('dependant');
/** Sent to each dependant when its prerequisite ends. */
export const prerequisiteDoneSignal = defineSignal<[{ taskId: string; status: string; error?: string }]>('prerequisiteDone');

/** Answers once a registry operation's change is committed and its follow-up recorded. */
export const registryOperationUpdate = defineUpdate<OperationOutcome>('operation');
