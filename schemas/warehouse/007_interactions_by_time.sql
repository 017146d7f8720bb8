-- Every interaction again, narrow and sorted by time, so the boards' "interactions per time bucket"
-- read only the range with FINAL instead of grouping every interaction id of the range
-- (bench/queries.py, 10 M interactions over 20,000 accounts, 90 days: "Interactions by channel"
-- 1,565-1,808 ms grouping ids against 205-293 ms here, measured on a loaded machine).
--
-- FINAL collapses rows of one (occurred_at, interaction_id), so an interaction whose time changes
-- (a rescheduled meeting: a new version with another start; an edited CRM activity) would be
-- counted at both times. The sink therefore writes a cancelling row (is_deleted = 1) at the time
-- that lost, with the winning version, before it inserts the interaction (streams/sinks/warehouse.py,
-- Sink.cancels): FINAL then keeps exactly the time interactions FINAL keeps. Emails never move
-- (their id is their Message-ID, their time its Date header, and a repeated event id is dropped
-- by the scorer), so only other channels are looked up. The lookup is by (account_id,
-- interaction_id), the interactions table's key: an interaction that moved to another account and
-- another time at once would be counted at both.
--
-- Kept on insert by the view; interactions that forget deletes outright are deleted here too
-- (streams/runtime/forget.py).

CREATE TABLE IF NOT EXISTS rapport.interactions_by_time
(
    occurred_at    DateTime64(3, 'UTC'),
    interaction_id String,
    account_id     String,
    channel        LowCardinality(String),
    automated      UInt8,
    version        UInt64,
    is_deleted     UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (occurred_at, interaction_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS rapport.interactions_by_time_mv TO rapport.interactions_by_time AS
SELECT occurred_at, interaction_id, account_id, channel, automated, version, toUInt8(0) AS is_deleted
FROM rapport.interactions;

-- Backfill what was written before this migration: the latest version of each only, so an
-- interaction that moved before now is not counted at its old time.
INSERT INTO rapport.interactions_by_time
SELECT occurred_at, interaction_id, account_id, channel, automated, version, toUInt8(0)
FROM rapport.interactions FINAL;
