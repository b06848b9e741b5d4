-- Up Migration

-- The record keys a task names. Kept here, not in the workflow: a task may name 10,000 keys of up
-- to 512 characters (more than a Temporal payload holds), and listTasks({ recordKey }) finds a task
-- by any of its keys, where the RegistryObjectKeys search attribute holds only what fits in 2 KB.
CREATE TABLE task_keys (
  task_id     text NOT NULL,
  record_key  text NOT NULL,
  added_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, record_key)
);
CREATE INDEX task_keys_record_key ON task_keys (record_key, added_at DESC);

-- A WAITING task's prerequisite. Registered when the task is added; the prerequisite reads its
-- dependants here when it ends (no signal per dependant into the prerequisite), and retention
-- never removes a task that a row here names.
CREATE TABLE task_dependants (
  prerequisite_id  text NOT NULL,
  dependant_id     text NOT NULL,
  registered_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (prerequisite_id, dependant_id)
);
CREATE INDEX task_dependants_dependant ON task_dependants (dependant_id);

-- How a task ended, written (under the same per-task lock as registrations) before its dependants
-- are told: a dependant registering at that moment finds the outcome here instead of waiting for a
-- signal that was already sent. Removed with the task.
CREATE TABLE task_outcomes (
  task_id   text PRIMARY KEY,
  status    text NOT NULL,
  error     text,
  ended_at  timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE task_outcomes;
DROP TABLE task_dependants;
DROP TABLE task_keys;
