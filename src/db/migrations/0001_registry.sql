-- Up Migration

-- Data sources group records (a harvest source, an institution's feed).
CREATE TABLE data_sources (
  id          serial PRIMARY KEY,
  key         text NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 255),
  title       text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE record_class AS ENUM ('collection', 'party', 'activity', 'service');
CREATE TYPE record_status AS ENUM (
  'DRAFT', 'SUBMITTED_FOR_ASSESSMENT', 'ASSESSMENT_IN_PROGRESS', 'MORE_WORK_REQUIRED', 'APPROVED', 'PUBLISHED'
);

-- Registry objects (RIF-CS records) with the fields the quality rules read.
CREATE TABLE registry_objects (
  id                  bigserial PRIMARY KEY,
  key                 text NOT NULL UNIQUE CHECK (length(key) BETWEEN 1 AND 512),
  class               record_class NOT NULL,
  type                text,
  group_name          text,
  data_source_id      int NOT NULL REFERENCES data_sources (id),
  status              record_status NOT NULL DEFAULT 'DRAFT',
  title               text,
  description         text,
  rights              text,
  access_policy       text,
  location_address    text,
  electronic_address  text,
  identifiers         text[] NOT NULL DEFAULT '{}',
  subjects            text[] NOT NULL DEFAULT '{}',
  dates               text[] NOT NULL DEFAULT '{}',
  spatial_coverage    text,
  temporal_coverage   text,
  citation_info       text,
  gold_standard       boolean NOT NULL DEFAULT false,
  -- Derived state, maintained by the background work.
  quality_level       smallint CHECK (quality_level IN (0, 1, 2, 3, 5)),
  quality_report      jsonb,
  quality_updated_at  timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_objects_data_source ON registry_objects (data_source_id, class);

-- Typed relations point at keys, not ids: RIF-CS links may cross data sources and may dangle
-- (the target deleted or not yet harvested). A record's own links go with it.
CREATE TABLE relations (
  from_id        bigint NOT NULL REFERENCES registry_objects (id) ON DELETE CASCADE,
  to_key         text NOT NULL,
  relation_type  text NOT NULL,
  PRIMARY KEY (from_id, to_key, relation_type)
);
CREATE INDEX relations_to_key ON relations (to_key);

-- The records related to one record, in both directions, existing targets only.
-- A single-statement SQL function, so the planner can inline it into callers.
CREATE FUNCTION related_records(p_id bigint, p_key text)
RETURNS TABLE (related_id bigint, related_key text, related_class record_class, related_title text,
               relation_type text, direction text)
LANGUAGE sql STABLE AS $$
  SELECT t.id, t.key, t.class, t.title, r.relation_type, 'outbound'
    FROM relations r JOIN registry_objects t ON t.key = r.to_key
   WHERE r.from_id = p_id AND t.id <> p_id
  UNION ALL
  SELECT f.id, f.key, f.class, f.title, r.relation_type, 'inbound'
    FROM relations r JOIN registry_objects f ON f.id = r.from_id
   WHERE r.to_key = p_key AND f.id <> p_id
$$;

-- The "index": full-text search documents. A separate store, as the registry's search engine
-- was: entries are written and removed by the background work, not by foreign keys.
CREATE TABLE record_index (
  record_id       bigint PRIMARY KEY,
  record_key      text NOT NULL,
  data_source_id  int NOT NULL,
  class           record_class NOT NULL,
  status          record_status NOT NULL,
  title           text,
  quality_level   smallint,
  document        tsvector NOT NULL,
  indexed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX record_index_document ON record_index USING gin (document);
CREATE INDEX record_index_key ON record_index (record_key);
CREATE INDEX record_index_data_source ON record_index (data_source_id);

-- The "cache": each record's extended rendering (the record, its related records' keys,
-- titles and classes, its quality level), served without joins.
CREATE TABLE record_cache (
  record_id     bigint PRIMARY KEY,
  record_key    text NOT NULL,
  rendering     jsonb NOT NULL,
  generated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX record_cache_key ON record_cache (record_key);

-- One row per registry operation whose follow-up is planned; written in the same transaction
-- as the change itself, so a retried activity finds its earlier result instead of redoing it.
CREATE TABLE registry_operations (
  op_id           text PRIMARY KEY,
  kind            text NOT NULL,
  record_key      text,
  record_class    record_class,
  data_source_id  int,
  affected_count  int NOT NULL DEFAULT 0,
  batch_count     int NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz
);
CREATE INDEX registry_operations_open ON registry_operations (data_source_id) WHERE completed_at IS NULL;

-- The records an operation's follow-up must recheck, split into batches up front so the
-- workflow passes (op, batch number) and never lists of keys.
CREATE TABLE followup_items (
  op_id      text NOT NULL REFERENCES registry_operations (op_id) ON DELETE CASCADE,
  batch_no   int NOT NULL,
  record_id  bigint NOT NULL,
  PRIMARY KEY (op_id, batch_no, record_id)
);

-- Down Migration
DROP TABLE followup_items;
DROP TABLE registry_operations;
DROP TABLE record_cache;
DROP TABLE record_index;
DROP FUNCTION related_records(bigint, text);
DROP TABLE relations;
DROP TABLE registry_objects;
DROP TYPE record_status;
DROP TYPE record_class;
DROP TABLE data_sources;
