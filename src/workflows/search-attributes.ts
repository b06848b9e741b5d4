import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';

/**
 * Upserts only the pairs whose value the execution does not hold yet (its starter set them, or an
 * earlier upsert did): each upsert is an event and a write of the visibility record.
 */
export function upsertChangedSearchAttributes(pairs: SearchAttributeUpdatePair[]): void {
  const held = workflowInfo().typedSearchAttributes;
  const changed = pairs.filter((p) => JSON.stringify(held.get(p.key)) !== JSON.stringify(p.value));
  if (changed.length) upsertSearchAttributes(changed);
}
