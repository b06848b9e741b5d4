-- Up Migration

-- Writing derived state (quality level, report, source versions) updates registry_objects rows
-- without touching any input. The triggers of 0007 ran for every such row and statement: a
-- plpgsql call per row, and a join of the statement's old and new rows (about half the time of a
-- 1,000-record quality update). Now each fires only for rows whose inputs changed, a condition
-- PostgreSQL checks without calling the function. Same rules, same invalidations.

DROP TRIGGER registry_objects_inputs_version ON registry_objects;
CREATE FUNCTION take_inputs_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.inputs_version := nextval('derived_input_versions');
  RETURN NEW;
END $$;
CREATE TRIGGER registry_objects_inputs_version BEFORE UPDATE ON registry_objects
  FOR EACH ROW
  WHEN ((NEW.key, NEW.class, NEW.type, NEW.group_name, NEW.data_source_id, NEW.status, NEW.title, NEW.description,
         NEW.rights, NEW.access_policy, NEW.location_address, NEW.electronic_address, NEW.identifiers, NEW.subjects,
         NEW.dates, NEW.spatial_coverage, NEW.temporal_coverage, NEW.citation_info, NEW.gold_standard)
        IS DISTINCT FROM
        (OLD.key, OLD.class, OLD.type, OLD.group_name, OLD.data_source_id, OLD.status, OLD.title, OLD.description,
         OLD.rights, OLD.access_policy, OLD.location_address, OLD.electronic_address, OLD.identifiers, OLD.subjects,
         OLD.dates, OLD.spatial_coverage, OLD.temporal_coverage, OLD.citation_info, OLD.gold_standard))
  EXECUTE FUNCTION take_inputs_version();

-- A record's key, class or title reaches its related records' derived state.
DROP TRIGGER registry_objects_invalidate_update ON registry_objects;
CREATE FUNCTION invalidate_related_of_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO derived_invalidations (record_id)
  SELECT rr.related_id FROM related_records(NEW.id, NEW.key) rr
  UNION
  -- Records that pointed at the old key lose their target.
  SELECT r.from_id FROM relations r WHERE NEW.key <> OLD.key AND r.to_key = OLD.key;
  RETURN NULL;
END $$;
CREATE TRIGGER registry_objects_invalidate_update AFTER UPDATE ON registry_objects
  FOR EACH ROW
  WHEN ((NEW.key, NEW.class, NEW.title) IS DISTINCT FROM (OLD.key, OLD.class, OLD.title))
  EXECUTE FUNCTION invalidate_related_of_record();

-- Down Migration
DROP TRIGGER registry_objects_invalidate_update ON registry_objects;
DROP FUNCTION invalidate_related_of_record();
CREATE TRIGGER registry_objects_invalidate_update AFTER UPDATE ON registry_objects
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION invalidate_related_of_records();
DROP TRIGGER registry_objects_inputs_version ON registry_objects;
DROP FUNCTION take_inputs_version();
CREATE TRIGGER registry_objects_inputs_version BEFORE UPDATE ON registry_objects
  FOR EACH ROW EXECUTE FUNCTION bump_inputs_version();
