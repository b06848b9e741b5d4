-- Up Migration

-- Records whose derived state PostgreSQL refused to compute or store (a data exception, an integrity
-- or cardinality violation, a value over a limit such as the tsvector size): a follow-up or task batch
-- that fails on data is split until the refused records are found, those are kept here, and the
-- rest of the batch goes on. A later successful refresh of the record (after a fix) removes its row.
CREATE TABLE quarantined_records (
  record_id       bigint PRIMARY KEY,
  record_key      text NOT NULL,
  data_source_id  int,
  -- The operation or task whose batch found it.
  found_by        text NOT NULL,
  error           text NOT NULL,
  sqlstate        text,
  attempts        int NOT NULL DEFAULT 1,
  quarantined_at  timestamptz NOT NULL DEFAULT now(),
  last_tried_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantined_records_data_source ON quarantined_records (data_source_id);

-- Down Migration
DROP TABLE quarantined_records;
