-- Up Migration

-- A deletion answers before its follow-up is planned: the delete transaction writes the record's
-- id, key and data source on its operation and removes the record, work that does not grow with
-- its relations. The coalescer's round then finds the related records from the relations left in
-- place, notes their invalidations, and removes those relations when the round completes. Before,
-- the delete found every related record, wrote the work list, cascaded the record's relations
-- and ran the invalidation triggers over them before answering: 3.2 s for a hub of 100,000.

-- Set on the operations whose related records their round plans (NULL: planned by the change).
ALTER TABLE registry_operations ADD COLUMN deleted_record_id bigint;

-- The record's own relations stay until its round completes. Nothing reads them meanwhile:
-- related_records joins both ends to existing records, and ids are never reused. Every other
-- delete removes them itself (deleteRecordRows), as the cascade did.
ALTER TABLE relations DROP CONSTRAINT relations_from_id_fkey;

-- Inside a deferred deletion (and its round's removal of the relations) the round does the delete
-- triggers' work: a transaction-local setting skips them there, and only there, checked by
-- PostgreSQL before it calls anything.
DROP TRIGGER registry_objects_invalidate_delete ON registry_objects;
CREATE TRIGGER registry_objects_invalidate_delete AFTER DELETE ON registry_objects
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
  WHEN (current_setting('registry.follow_up_planned_by_round', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION invalidate_related_of_records();
DROP TRIGGER relations_invalidate_delete ON relations;
CREATE TRIGGER relations_invalidate_delete AFTER DELETE ON relations
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT
  WHEN (current_setting('registry.follow_up_planned_by_round', true) IS DISTINCT FROM 'on')
  EXECUTE FUNCTION invalidate_relation_ends();

-- Down Migration
DROP TRIGGER relations_invalidate_delete ON relations;
CREATE TRIGGER relations_invalidate_delete AFTER DELETE ON relations
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION invalidate_relation_ends();
DROP TRIGGER registry_objects_invalidate_delete ON registry_objects;
CREATE TRIGGER registry_objects_invalidate_delete AFTER DELETE ON registry_objects
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION invalidate_related_of_records();
DELETE FROM relations r WHERE NOT EXISTS (SELECT 1 FROM registry_objects ro WHERE ro.id = r.from_id);
ALTER TABLE relations ADD CONSTRAINT relations_from_id_fkey FOREIGN KEY (from_id) REFERENCES registry_objects (id) ON DELETE CASCADE;
ALTER TABLE registry_operations DROP COLUMN deleted_record_id;
