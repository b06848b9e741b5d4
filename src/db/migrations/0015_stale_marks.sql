-- Up Migration

-- The records that may need derived-state work, so that the hourly maintenance reads these (and
-- the records with open invalidations) instead of comparing versions across every record: 3.9 s
-- for a million records, and growing with the registry. A record is marked when it is created,
-- when its inputs change (the version trigger below) and when its quality level or report changes
-- (the quality recheck marks it: its index entry and rendering show the level). The maintenance
-- removes a mark once its record is gone, or fresh with a cache entry, and only if nobody marked
-- the record again since it read the mark (marked_version).
CREATE TABLE derived_stale_marks (
  record_id       bigint PRIMARY KEY,
  marked_version  bigint NOT NULL DEFAULT nextval('derived_input_versions')
);

CREATE FUNCTION mark_new_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO derived_stale_marks (record_id) SELECT id FROM changed_new
  ON CONFLICT (record_id) DO UPDATE SET marked_version = EXCLUDED.marked_version;
  RETURN NULL;
END $$;
CREATE TRIGGER registry_objects_mark_insert AFTER INSERT ON registry_objects
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION mark_new_records();

-- Called only for rows whose inputs changed (the trigger's WHEN, from 0012).
CREATE OR REPLACE FUNCTION take_inputs_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.inputs_version := nextval('derived_input_versions');
  INSERT INTO derived_stale_marks (record_id, marked_version) VALUES (NEW.id, NEW.inputs_version)
  ON CONFLICT (record_id) DO UPDATE SET marked_version = EXCLUDED.marked_version;
  RETURN NEW;
END $$;

-- A derived row removed (with its record, or behind the registry's back): its record needs it again.
-- Marks of records that are gone are removed by the next maintenance.
CREATE FUNCTION mark_records_of_removed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO derived_stale_marks (record_id) SELECT DISTINCT record_id FROM removed
  ON CONFLICT (record_id) DO UPDATE SET marked_version = EXCLUDED.marked_version;
  RETURN NULL;
END $$;
CREATE TRIGGER record_index_mark_delete AFTER DELETE ON record_index
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION mark_records_of_removed_rows();
CREATE TRIGGER record_cache_mark_delete AFTER DELETE ON record_cache
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION mark_records_of_removed_rows();

-- A truncate has no transition table: every record is marked.
CREATE FUNCTION mark_every_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO derived_stale_marks (record_id) SELECT id FROM registry_objects
  ON CONFLICT (record_id) DO UPDATE SET marked_version = EXCLUDED.marked_version;
  RETURN NULL;
END $$;
CREATE TRIGGER record_index_mark_truncate AFTER TRUNCATE ON record_index FOR EACH STATEMENT EXECUTE FUNCTION mark_every_record();
CREATE TRIGGER record_cache_mark_truncate AFTER TRUNCATE ON record_cache FOR EACH STATEMENT EXECUTE FUNCTION mark_every_record();

-- What is stale or has no cache entry now gets its mark (one pass over the registry, once).
INSERT INTO derived_stale_marks (record_id)
SELECT ro.id
  FROM registry_objects ro
  LEFT JOIN record_index ri ON ri.record_id = ro.id
  LEFT JOIN record_cache rc ON rc.record_id = ro.id
 WHERE ro.quality_source_version IS NULL OR ro.quality_source_version < ro.inputs_version
    OR ri.record_id IS NULL OR ri.source_version IS NULL
    OR ri.source_version < GREATEST(ro.inputs_version, coalesce(ro.quality_version, 0))
    OR rc.record_id IS NULL OR rc.source_version IS NULL
    OR rc.source_version < GREATEST(ro.inputs_version, coalesce(ro.quality_version, 0));

-- Down Migration
CREATE OR REPLACE FUNCTION take_inputs_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.inputs_version := nextval('derived_input_versions');
  RETURN NEW;
END $$;
DROP TRIGGER record_cache_mark_truncate ON record_cache;
DROP TRIGGER record_index_mark_truncate ON record_index;
DROP FUNCTION mark_every_record();
DROP TRIGGER record_cache_mark_delete ON record_cache;
DROP TRIGGER record_index_mark_delete ON record_index;
DROP FUNCTION mark_records_of_removed_rows();
DROP TRIGGER registry_objects_mark_insert ON registry_objects;
DROP FUNCTION mark_new_records();
DROP TABLE derived_stale_marks;
