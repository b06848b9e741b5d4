-- Up Migration

-- The trace of the call that queued an operation (W3C traceparent/tracestate), so that the
-- coalesced round that does its follow-up joins that trace; a round keeps its operations' carriers
-- (the oldest first, at most 32). Null when tracing is off.
ALTER TABLE registry_operations ADD COLUMN trace_context jsonb;

-- Every task run's end, for the page's Health view (24-hour charts of outcomes and durations by
-- method). Written by the task's workflow (idempotent per task and run) and kept two days.
CREATE TABLE task_run_outcomes (
  task_id      text NOT NULL,
  iteration    integer NOT NULL,
  method       text NOT NULL,
  status       text NOT NULL CHECK (status IN ('COMPLETED', 'FAILED', 'CANCELLED')),
  finished_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms  double precision,
  PRIMARY KEY (task_id, iteration)
);
CREATE INDEX task_run_outcomes_finished ON task_run_outcomes (finished_at);

-- Follow-up lag per data source, one row per minute and data source with work queued (the
-- highest any worker sampled in that minute), kept two days.
CREATE TABLE followup_lag_samples (
  minute           timestamptz NOT NULL,
  data_source_key  text NOT NULL,
  lag_seconds      double precision NOT NULL,
  queued           integer NOT NULL,
  PRIMARY KEY (minute, data_source_key)
);

-- Down Migration
DROP TABLE followup_lag_samples;
DROP TABLE task_run_outcomes;
ALTER TABLE registry_operations DROP COLUMN trace_context;
