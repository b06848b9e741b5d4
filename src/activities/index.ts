/** All activities, built from their injected dependencies. Workflows import only the type. */
import type { Pool } from '../db/pool.ts';
import { createDerivedActivities } from './derived.ts';
import { createRecordActivities } from './records.ts';

export interface ActivityDeps {
  pool: Pool;
}

export const createActivities = (deps: ActivityDeps) => ({
  ...createRecordActivities(deps),
  ...createDerivedActivities(deps),
});

export type Activities = ReturnType<typeof createActivities>;
