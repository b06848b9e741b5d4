-- Up Migration

-- Freshness of derived state by what it was computed from, not by timestamps: every change of a
-- record's inputs takes a new number from this sequence, and each derived value keeps the number
-- it was computed from. A re-harvest that changes nothing takes no number, so it leaves nothing stale.
CREATE SEQUENCE derived_input_versions;

ALTER TABLE registry_objects ADD COLUMN inputs_version bigint NOT NULL DEFAULT nextval('derived_input_versions');
ALTER TABLE registry_objects ADD COLUMN quality_source_version bigint;
-- Set by the quality recheck when it changes a record's level or report: the index entry and the
-- rendering show the level, so they are computed from it too.
ALTER TABLE registry_objects ADD COLUMN quality_version bigint;
ALTER TABLE record_index ADD COLUMN source_version bigint;
ALTER TABLE record_cache ADD COLUMN source_version bigint;

-- What exists now counts as computed from the current inputs where the timestamps said it was fresh.
UPDATE registry_objects SET quality_source_version = inputs_version WHERE quality_updated_at IS NOT NULL;
UPDATE registry_objects SET quality_version = inputs_version;
UPDATE record_index ri SET source_version = ro.inputs_version FROM registry_objects ro WHERE ro.id = ri.record_id AND ri.indexed_at >= ro.updated_at;
UPDATE record_cache rc SET source_version = ro.inputs_version FROM registry_objects ro WHERE ro.id = rc.record_id AND rc.generated_at >= ro.updated_at;


-- A record's own inputs changed (any field the quality rules, the index or the rendering read).
CREATE FUNCTION bump_inputs_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.key, NEW.class, NEW.type, NEW.group_name, NEW.data_source_id, NEW.status, NEW.title, NEW.description,
      NEW.rights, NEW.access_policy, NEW.location_address, NEW.electronic_address, NEW.identifiers, NEW.subjects,
      NEW.dates, NEW.spatial_coverage, NEW.temporal_coverage, NEW.citation_info, NEW.gold_standard)
     IS DISTINCT FROM
     (OLD.key, OLD.class, OLD.type, OLD.group_name, OLD.data_source_id, OLD.status, OLD.title, OLD.description,
      OLD.rights, OLD.access_policy, OLD.location_address, OLD.electronic_address, OLD.identifiers, OLD.subjects,
      OLD.dates, OLD.spatial_coverage, OLD.temporal_coverage, OLD.citation_info, OLD.gold_standard) THEN
    NEW.inputs_version := nextval('derived_input_versions');
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER registry_objects_inputs_version BEFORE UPDATE ON registry_objects
  FOR EACH ROW EXECUTE FUNCTION bump_inputs_version();

-- Changes that reach other records' derived state (a related record's key, class or title, a
-- relation added or removed, a related record created or deleted) are noted here rather than by
-- updating those records: no row locks beyond the ones the change already holds.
CREATE TABLE derived_invalidations (
  record_id  bigint NOT NULL,
  version    bigint NOT NULL DEFAULT nextval('derived_input_versions'),
  PRIMARY KEY (record_id, version)
);

CREATE FUNCTION invalidate_related_of_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- Most updates (derived columns, unchanged re-harvests) change none of these: filter first.
    WITH moved AS MATERIALIZED (
      SELECT n.id, n.key, o.key AS old_key FROM changed_new n JOIN changed_old o ON o.id = n.id
       WHERE (n.key, n.class, n.title) IS DISTINCT FROM (o.key, o.class, o.title))
    INSERT INTO derived_invalidations (record_id)
    SELECT rr.related_id FROM moved m, related_records(m.id, m.key) rr
    UNION
    -- Records that pointed at the old key lose their target.
    SELECT r.from_id FROM moved m JOIN relations r ON r.to_key = m.old_key WHERE m.key <> m.old_key;
  ELSIF TG_OP = 'INSERT' THEN
    INSERT INTO derived_invalidations (record_id)
    SELECT DISTINCT r.from_id FROM changed_new n JOIN relations r ON r.to_key = n.key WHERE r.from_id <> n.id;
  ELSE
    INSERT INTO derived_invalidations (record_id)
    SELECT DISTINCT r.from_id FROM changed_old o JOIN relations r ON r.to_key = o.key WHERE r.from_id <> o.id;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER registry_objects_invalidate_update AFTER UPDATE ON registry_objects
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION invalidate_related_of_records();
CREATE TRIGGER registry_objects_invalidate_insert AFTER INSERT ON registry_objects
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION invalidate_related_of_records();
CREATE TRIGGER registry_objects_invalidate_delete AFTER DELETE ON registry_objects
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION invalidate_related_of_records();

CREATE FUNCTION invalidate_relation_ends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO derived_invalidations (record_id)
  SELECT DISTINCT x.id FROM (
    SELECT c.from_id AS id FROM changed c
    UNION SELECT ro.id FROM changed c JOIN registry_objects ro ON ro.key = c.to_key
  ) x;
  RETURN NULL;
END $$;
CREATE TRIGGER relations_invalidate_insert AFTER INSERT ON relations
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION invalidate_relation_ends();
CREATE TRIGGER relations_invalidate_delete AFTER DELETE ON relations
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION invalidate_relation_ends();

-- Down Migration
DROP TRIGGER relations_invalidate_delete ON relations;
DROP TRIGGER relations_invalidate_insert ON relations;
DROP FUNCTION invalidate_relation_ends();
DROP TRIGGER registry_objects_invalidate_delete ON registry_objects;
DROP TRIGGER registry_objects_invalidate_insert ON registry_objects;
DROP TRIGGER registry_objects_invalidate_update ON registry_objects;
DROP FUNCTION invalidate_related_of_records();
DROP TABLE derived_invalidations;
DROP TRIGGER registry_objects_inputs_version ON registry_objects;
DROP FUNCTION bump_inputs_version();
ALTER TABLE record_cache DROP COLUMN source_version;
ALTER TABLE record_index DROP COLUMN source_version;
ALTER TABLE registry_objects DROP COLUMN quality_version;
ALTER TABLE registry_objects DROP COLUMN quality_source_version;
ALTER TABLE registry_objects DROP COLUMN inputs_version;
DROP SEQUENCE derived_input_versions;
