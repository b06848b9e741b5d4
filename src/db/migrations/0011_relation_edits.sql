-- Up Migration

-- A relation edited in place (its type, its target or its source) changes the derived state of
-- its ends before and after the edit, as an insert and a delete do (0007).
CREATE FUNCTION invalidate_edited_relation_ends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO derived_invalidations (record_id)
  SELECT DISTINCT x.id FROM (
    SELECT c.from_id AS id FROM changed_old c
    UNION SELECT c.from_id FROM changed_new c
    UNION SELECT ro.id FROM changed_old c JOIN registry_objects ro ON ro.key = c.to_key
    UNION SELECT ro.id FROM changed_new c JOIN registry_objects ro ON ro.key = c.to_key
  ) x;
  RETURN NULL;
END $$;
CREATE TRIGGER relations_invalidate_update AFTER UPDATE ON relations
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION invalidate_edited_relation_ends();

-- Down Migration
DROP TRIGGER relations_invalidate_update ON relations;
DROP FUNCTION invalidate_edited_relation_ends();
