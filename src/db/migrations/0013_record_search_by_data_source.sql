-- Up Migration

-- A data source's records in key order, a page at a time: the admin page's record list. With
-- the data source alone indexed, a page of a 100,000-record data source sorted all of them.
CREATE INDEX record_index_data_source_key ON record_index (data_source_id, record_key);
DROP INDEX record_index_data_source;

-- Down Migration
CREATE INDEX record_index_data_source ON record_index (data_source_id);
DROP INDEX record_index_data_source_key;
