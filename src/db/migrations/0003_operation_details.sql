-- Up Migration
-- What an operation changed itself (records deleted, imported, moved), kept with its outcome so a
-- retried activity returns the same answer.
ALTER TABLE registry_operations ADD COLUMN details jsonb NOT NULL DEFAULT '{}';

-- Down Migration
ALTER TABLE registry_operations DROP COLUMN details;
