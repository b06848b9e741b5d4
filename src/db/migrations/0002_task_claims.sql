-- Up Migration

-- The dedup rule of the original task manager: while a task with a method and data source is
-- WAITING, adding another with the same method and data source returns the waiting one. The
-- primary key makes the claim atomic under concurrent adds; '' stands for "no data source".
CREATE TABLE task_claims (
  method           text NOT NULL,
  data_source_key  text NOT NULL DEFAULT '',
  task_id          text NOT NULL,
  claimed_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (method, data_source_key)
);

-- Down Migration
DROP TABLE task_claims;
