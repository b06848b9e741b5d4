/** Updates and queries of the workflows: imported by the client too, so no activity proxies here. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DeletionOutcome, FollowUpProgress, LevelChanges, OperationOutcome } from '../shared.ts';
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
/** Version 2 only: merged a duplicate add's keys into a WAITING task (kept for executions of that version). */
export const mergeUpdateV2 = defineUpdate<TaskInfo, [{ registryObjectKeys?: string[] }]>('merge');
/**
 * What an add asks of the WAITING task it would merge into, besides keys (checked against
 * PostgreSQL before): the same prerequisite, and a start no earlier than `notBefore` and no later
 * than `notAfter` (epoch milliseconds). Refused when the task cannot promise that.
 */
export interface CoveredAdd {
  fromTaskId: string;
  prerequisiteTaskId?: string;
  notBefore: number;
  notAfter: number;
}
/** Failure types of a refused merge: the holder left WAITING (claim again), or it does not cover the add. */
export const MERGE_REFUSALS = { notWaiting: 'NoLongerWaiting', notCovered: 'NotCovered' } as const;
/** Merges an add that this WAITING task already covers; refused (validator) when it does not. */
export const mergeCoveredUpdate = defineUpdate<TaskInfo, [CoveredAdd]>('mergeCovered');
/** A task that waits for this one: notified when this one ends. */
export const dependantSignal = defineSignal<[string]>('dependant');
/** Sent to each dependant when its prerequisite ends. */
export const prerequisiteDoneSignal = defineSignal<[{ taskId: string; status: string; error?: string }]>('prerequisiteDone');

/** Answers once a registry operation's change is committed and its follow-up recorded. */
export const registryOperationUpdate = defineUpdate<OperationOutcome>('operation');

/** An operation whose follow-up a data source's coalescer should run. */
export interface FollowUpRequest {
  opId: string;
}
/** Where an operation's follow-up stands in its coalescer. */
export interface FollowUpStatus {
  opId: string;
  /** unknown: never seen, or done so long ago that the coalescer no longer remembers it. */
  state: 'queued' | 'processing' | 'done' | 'unknown';
  /** While processing: the round's batches. */
  batchesTotal?: number;
  batchesDone?: number;
  /** When done: the totals of the round that covered it (shared with the other operations in it). */
  qualityChanges?: LevelChanges;
  reindexed?: number;
  recached?: number;
  /** Operations processed in the same round (1: alone). */
  coalescedWith?: number;
  /** Distinct records the round re-processed. */
  roundRecords?: number;
}
export interface CoalescerState {
  dataSourceKey: string;
  queued: string[];
  processing?: { roundId: string; opIds: string[]; batchesTotal: number; batchesDone: number; records: number };
  rounds: number;
  operations: number;
  recordsProcessed: number;
}
export const followUpRequestSignal = defineSignal<[FollowUpRequest]>('followUpRequest');
export const coalescerStateQuery = defineQuery<CoalescerState>('coalescer');
export const followUpStatusQuery = defineQuery<FollowUpStatus, [string]>('followUpStatus');
