-- Up Migration

-- The coalescer's queue and every operation's outcome live here, not in the coalescer's workflow
-- state (which would grow with the registry's activity and travel with every continue-as-new):
-- an operation handed to its data source's coalescer is queued until a round claims it
-- (round_id); the round's row keeps the totals (details), readable as long as the rows exist.
ALTER TABLE registry_operations ADD COLUMN handed_off_at timestamptz;
ALTER TABLE registry_operations ADD COLUMN round_id text;
CREATE INDEX registry_operations_queued ON registry_operations (data_source_id, handed_off_at)
  WHERE handed_off_at IS NOT NULL AND round_id IS NULL AND completed_at IS NULL;

-- Down Migration
DROP INDEX registry_operations_queued;
ALTER TABLE registry_operations DROP COLUMN round_id;
ALTER TABLE registry_operations DROP COLUMN handed_off_at;
