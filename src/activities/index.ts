/** All activities, built from their injected dependencies. Workflows import only the type. */
import type { Client } from '@temporalio/client';
import type { Pool } from '../db/pool.ts';
import type { LoadedTasks } from '../taskmgr/discovery.ts';
import type { CoalescerSettings } from '../workflows/coalesce-settings.ts';
import { createDerivedActivities } from './derived.ts';
import { createFollowUpActivities } from './followup.ts';
import { createRecordActivities } from './records.ts';
import { createTaskActivities, type TaskWaitSettings } from './task-activities.ts';

export interface ActivityDeps {
  pool: Pool;
  /** For activities that add tasks, describe them or signal them. */
  temporal: Client;
  taskQueue: string;
  /** Task modules, loaded and validated when the worker starts. */
  tasks: LoadedTasks;
  /** The follow-up configuration (FOLLOWUP_*): coalescers read it every round. */
  followUp?: CoalescerSettings;
  /** How WAITING tasks wait (TASK_PREREQUISITE_RECHECK, TASK_WAIT_HISTORY_LIMIT). */
  waits?: TaskWaitSettings;
  /** TASK_RETENTION, for the maintenance task. */
  taskRetentionMs?: number;
}

export const createActivities = (deps: ActivityDeps) => ({
  ...createRecordActivities(deps),
  ...createDerivedActivities(deps),
  ...createFollowUpActivities(deps),
  ...createTaskActivities(deps),
});

export type Activities = ReturnType<typeof createActivities>;
