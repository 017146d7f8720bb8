-- Columns the scoring model (profile health-1) writes beside each score, so boards, reviews
-- and data-quality checks read them directly instead of parsing the explanation JSON.

-- Seniority and department are classified from the CRM title (streams/scoring/titles.py).
ALTER TABLE rapport.contacts
    ADD COLUMN IF NOT EXISTS seniority  LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS department LowCardinality(String) DEFAULT '';

-- tier: very_prepared (>= 75) / prepared / unprepared; missing: signals that scored nothing.
ALTER TABLE rapport.meeting_preparedness
    ADD COLUMN IF NOT EXISTS status          LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS tier            LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS buyer_attendees UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS missing         Array(String);

-- outcomes: what the buyer did within the response window (replied, replied_fast, ...).
ALTER TABLE rapport.interaction_value
    ADD COLUMN IF NOT EXISTS channel   LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS direction LowCardinality(String) DEFAULT '',
    ADD COLUMN IF NOT EXISTS seller    String DEFAULT '',
    ADD COLUMN IF NOT EXISTS buyers    Array(String),
    ADD COLUMN IF NOT EXISTS outcomes  Array(String);

-- coverage: the engaged "seniority:department" cells; trend_30d: score minus the score 30 days earlier.
ALTER TABLE rapport.account_health
    ADD COLUMN IF NOT EXISTS trend_30d          Float64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS seniority_coverage UInt8 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS function_coverage  UInt8 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS sellers_engaged    UInt32 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS coverage           Array(String),
    ADD COLUMN IF NOT EXISTS last_touch         DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC'),
    ADD COLUMN IF NOT EXISTS top_reason         String DEFAULT '';

-- status: open, then resolved (same alert_id, higher version) when the condition clears.
ALTER TABLE rapport.alerts
    ADD COLUMN IF NOT EXISTS status   LowCardinality(String) DEFAULT 'open',
    ADD COLUMN IF NOT EXISTS subject  String DEFAULT '',
    ADD COLUMN IF NOT EXISTS ended_at DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');
