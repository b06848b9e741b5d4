-- Up Migration
-- What each follow-up batch changed, written in the batch's own transaction: a batch repeated
-- after a lost worker finds its first run's result here, so the reported totals stay exact
-- (its changes are already in and a rerun would change, and count, nothing). Removed with the
-- operation when the retention runs out.
CREATE TABLE followup_batch_results (
  op_id     text NOT NULL REFERENCES registry_operations (op_id) ON DELETE CASCADE,
  batch_no  int NOT NULL,
  -- NULL only inside the claiming transaction.
  result    jsonb,
  PRIMARY KEY (op_id, batch_no)
);

-- Down Migration
DROP TABLE followup_batch_results;
