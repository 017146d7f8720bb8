-- Core tables of database `rapport`. Every table is a ReplacingMergeTree keyed by stable ids,
-- so replays and redelivered events never double-count (query with FINAL, or argMax by version).
-- non_replicated_deduplication_window makes a retried insert with the same
-- insert_deduplication_token (topic/partition/offsets) a no-op on chDB and single servers.

CREATE DATABASE IF NOT EXISTS rapport;

CREATE TABLE IF NOT EXISTS rapport.accounts
(
    account_id  String,
    name        String,
    domains     Array(String),
    owner       String,
    industry    String,
    provisional UInt8,
    source      LowCardinality(String),
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY account_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.contacts
(
    email       String,
    contact_id  String,
    account_id  String,
    name        String,
    title       String,
    active      UInt8,
    source      LowCardinality(String),
    updated_at  DateTime64(3, 'UTC'),
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY email
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.opportunities
(
    opportunity_id String,
    account_id     String,
    stage          LowCardinality(String),
    status         LowCardinality(String),
    amount         Float64,
    owner          String,
    created_at     DateTime64(3, 'UTC'),
    updated_at     DateTime64(3, 'UTC'),
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY opportunity_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.interactions
(
    interaction_id   String,
    account_id       String,
    occurred_at      DateTime64(3, 'UTC'),
    channel          LowCardinality(String),
    direction        Enum8('outbound' = 1, 'inbound' = 2, 'internal' = 3, 'mutual' = 4),
    kind             LowCardinality(String),
    sellers          Array(String),
    buyers           Array(String),
    thread_id        String,
    in_reply_to      String,
    status           LowCardinality(String),
    automated        UInt8,
    match_method     LowCardinality(String),
    match_confidence Float32,
    source_event_id  String,
    detail           String,
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, interaction_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.meeting_preparedness
(
    meeting_id    String,
    account_id    String,
    starts_at     DateTime64(3, 'UTC'),
    seller        String,
    score         Float64,
    explanation   String,
    model_version LowCardinality(String),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, meeting_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.interaction_value
(
    interaction_id String,
    account_id     String,
    occurred_at    DateTime64(3, 'UTC'),
    score          Float64,
    explanation    String,
    model_version  LowCardinality(String),
    version        UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, interaction_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.account_health
(
    account_id       String,
    as_of            Date,
    score            Float64,
    tier             LowCardinality(String),
    depth            Float64,
    engaged_contacts UInt32,
    explanation      String,
    model_version    LowCardinality(String),
    version          UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, as_of)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.alerts
(
    alert_id      String,
    account_id    String,
    raised_at     DateTime64(3, 'UTC'),
    kind          LowCardinality(String),
    severity      LowCardinality(String),
    reason        String,
    explanation   String,
    model_version LowCardinality(String),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, alert_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS rapport.rejected_events
(
    rejected_id String,
    topic       LowCardinality(String),
    stage       LowCardinality(String),
    reason      String,
    original    String,
    partition   Int32,
    offset      Int64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY rejected_id
SETTINGS non_replicated_deduplication_window = 1000;
