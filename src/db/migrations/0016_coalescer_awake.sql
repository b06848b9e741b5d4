-- Up Migration

-- A data source whose coalescer is awake: it has planned a round and will look at its queue again
-- before it sleeps. A deletion queued meanwhile need not wake it with a signal (a signal costs the
-- deletion a second workflow task and the coalescer one more). The deletion reads the row with
-- FOR KEY SHARE; the coalescer's check before sleeping locks it FOR UPDATE, so it waits for those
-- deletions to commit and then sees their operations, or a deletion waits for the check and, the
-- row gone, signals. awake_until bounds how long deletions trust a coalescer that was terminated
-- mid-round: past it they signal again, which starts a new one.
CREATE TABLE coalescer_awake (
  data_source_id  int PRIMARY KEY REFERENCES data_sources (id) ON DELETE CASCADE,
  awake_until     timestamptz NOT NULL
);

-- Down Migration
DROP TABLE coalescer_awake;
