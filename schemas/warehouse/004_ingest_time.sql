-- When a row reached the warehouse, filled by the server at insert time (the sink never sends it):
-- the pipeline operations board plots throughput and lag by ingest time against event time.
-- MATERIALIZED, so `SELECT *` leaves it out: live and replay rows stay comparable column for column.

ALTER TABLE rapport.interactions
    ADD COLUMN IF NOT EXISTS ingested_at DateTime64(3, 'UTC') MATERIALIZED now64(3);

ALTER TABLE rapport.rejected_events
    ADD COLUMN IF NOT EXISTS ingested_at DateTime64(3, 'UTC') MATERIALIZED now64(3);
