-- Sellers (sales agents) from the CRM, with their manager and team.

CREATE TABLE IF NOT EXISTS rapport.sellers
(
    seller_id  String,
    name       String,
    email      String,
    manager    String,
    team       LowCardinality(String),
    source     LowCardinality(String),
    updated_at DateTime64(3, 'UTC'),
    version    UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY seller_id
SETTINGS non_replicated_deduplication_window = 1000;
