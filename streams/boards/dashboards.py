"""The five Rapport boards, built with grafana-foundation-sdk.

Every query reads the warehouse tables of ``schemas/warehouse`` (ReplacingMergeTrees) as their
latest versions, with ``FINAL``, except where a panel ranges over every account's interactions
by time: ``FINAL`` must read and merge the whole sort key (account, id) there, while
``argMax(column, version)`` grouped by id reads only the rows in the time range
(``bench/queries.py`` on 10 M interactions: 300 ms → 20 ms for a day of interactions). The same
rewrite made the health queries slower (argMax by day and version over every snapshot); they
read the monthly summary ``account_health_monthly`` instead (:func:`latest_health`). Queries use
only the ClickHouse
datasource's macros, so tests can expand and run each one (:mod:`streams.boards.macros`). Time
series queries put the time column first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grafana_foundation_sdk.builders import barchart, piechart, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row
from grafana_foundation_sdk.models.dashboard import VariableOption, VariableRefresh, VariableSort

from streams.boards.queries import DATASOURCE, ClickHouse

FOLDER_UID = "rapport"
FOLDER_TITLE = "Rapport"
TAGS = ["rapport"]

PanelKind = Callable[[], timeseries.Panel | table.Panel | stat.Panel | piechart.Panel | barchart.Panel]

# The fields of a health snapshot that boards read: name in account_health_monthly → expression on
# account_health (schemas/warehouse/005_health_monthly.sql).
HEALTH_FIELDS = {
    "as_of": "as_of",
    "score": "score",
    "tier": "tier",
    "depth": "depth",
    "trend_30d": "trend_30d",
    "engaged_contacts": "engaged_contacts",
    "last_touch": "last_touch",
    "top_reason": "top_reason",
    "cells": "length(coverage)",
}
# A daily row's place in time as account_health_monthly.latest: (as_of, version) as one number.
LATEST = "bitShiftLeft(toUInt128(toUInt32(as_of)), 64) + version"


def latest_health(fields: tuple[str, ...], **ranges: tuple[str, str, str]) -> str:
    """Per account, the latest snapshot in each named date range ``(low, high, op)`` (``as_of >=
    low AND as_of op high``, op ``<`` or ``<=``): columns ``name_field`` for each of ``fields``
    (HEALTH_FIELDS) and ``name_rows`` (the range has a snapshot); accounts with one in some range.

    Whole months in a range come from ``account_health_monthly`` (one row per account and month),
    the days before the first and after the last whole month from ``account_health``, so any range
    gives what ``FINAL`` and ``argMax`` by day over every snapshot give
    (tests/boards/test_health_summary.py). bench/queries.py, 7.3 M snapshots: see README."""

    def bounds(low: str, high: str, op: str) -> tuple[str, str]:
        # [first, after): the whole months of the range, as constants (no function per row)
        first = f"if(toStartOfMonth({low}) = {low}, {low}, toLastDayOfMonth({low}) + 1)"
        after = f"toStartOfMonth({high})"
        if op == "<=":
            after = f"if(toLastDayOfMonth({high}) = {high}, {high} + 1, {after})"
        return first, after

    whole = [(r, *bounds(*r)) for r in ranges.values()]
    months = " OR ".join(f"(month >= {f} AND month < {a})" for _, f, a in whole)
    days = " OR ".join(
        f"(as_of >= {low} AND as_of {op} {high} AND (as_of < {f} OR as_of >= {a}))"
        for (low, high, op), f, a in whole
    )
    inside = {name: f"first >= {low} AND last {op} {high}" for name, (low, high, op) in ranges.items()}
    picks = ",\n           ".join(
        [
            f"argMaxIf({field}, latest, {inside[name]}) AS {name}_{field}"
            for name in ranges
            for field in fields
        ]
        + [f"countIf({inside[name]}) > 0 AS {name}_rows" for name in ranges]
    )
    summary = ", ".join(fields)
    daily = ", ".join(f"{HEALTH_FIELDS[field]} AS {field}" for field in fields)
    return f"""
    SELECT account_id,
           {picks}
    FROM (
        SELECT account_id, month AS first, toLastDayOfMonth(month) AS last, latest, {summary}
        FROM rapport.account_health_monthly
        WHERE {months}
        UNION ALL
        SELECT account_id, as_of AS first, as_of AS last, {LATEST} AS latest, {daily}
        FROM rapport.account_health
        WHERE {days})
    GROUP BY account_id"""


# The latest daily health snapshot of every account up to the end of the time range.
LATEST_HEALTH = f"""
    SELECT account_id, h_as_of AS snapshot, h_score AS score, h_tier AS tier, h_depth AS depth,
           h_trend_30d AS trend_30d, h_engaged_contacts AS engaged_contacts, h_last_touch AS last_touch,
           h_top_reason AS top_reason
    FROM ({latest_health(tuple(HEALTH_FIELDS)[:-1], h=("toDate(0)", "toDate($__toTime)", "<="))})"""


def latest_interactions(time_column: str, **columns: str) -> str:
    """The latest version of every interaction whose ``time_column`` is in the time range, with
    ``columns`` (alias → column; aliases must differ from column names, which WHERE reads)."""
    picks = ",\n           ".join(f"argMax({column}, version) AS {name}" for name, column in columns.items())
    return f"""(
    SELECT {picks}
    FROM rapport.interactions
    WHERE $__timeFilter({time_column})
    GROUP BY interaction_id)"""


def interactions_by_time(condition: str = "", **columns: str) -> str:
    """The interactions whose event time is in the range, from their time-sorted copy
    (schemas/warehouse/007_interactions_by_time.sql): FINAL there reads only the range and keeps
    one row per interaction, where ``latest_interactions`` groups every id of the range (10 M
    interactions: 205-293 ms against 1,565-1,808 ms). It holds the event time, account, channel
    and automated flag; ``columns`` as in ``latest_interactions``."""
    picks = ", ".join(f"{column} AS {name}" for name, column in columns.items())
    extra = f" AND {condition}" if condition else ""
    return f"""(
    SELECT {picks}
    FROM rapport.interactions_by_time FINAL
    WHERE $__timeFilter(occurred_at){extra})"""


ACCOUNT_NAMES = "(SELECT account_id, name FROM rapport.accounts FINAL) AS a"
SELLER_TEAMS = "(SELECT email, team FROM rapport.sellers FINAL) AS s"


@dataclass
class Layout:
    """Numbers the panels of one board (Grafana needs ids unique within a dashboard)."""

    next_id: int = 1

    def take(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def panel(
    layout: Layout,
    kind: PanelKind,
    title: str,
    query: ClickHouse,
    width: int = 12,
    height: int = 8,
    unit: str | None = None,
    description: str | None = None,
) -> timeseries.Panel | table.Panel | stat.Panel | piechart.Panel | barchart.Panel:
    built = kind().id(layout.take()).title(title).datasource(DATASOURCE).with_target(query)
    built = built.span(width).height(height)
    if unit:
        built = built.unit(unit)
    if description:
        built = built.description(description)
    return built


def row(layout: Layout, title: str) -> Row:
    return Row(title).id(layout.take())


def board(uid: str, title: str, description: str, time_from: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("utc")
        .time(time_from, "now")
        .refresh("1m")
        .editable()
    )


def value_of(name: str) -> str:
    """A single-valued variable as a SQL string that no value can break out of.

    Grafana's ``singlequote`` format only puts a backslash before ``'`` and leaves ``\\``, which
    ClickHouse reads as an escape: ``x\\' OR 1=1 --`` closed the string and returned every
    account (issue 18). ``percentencode`` leaves only ``A-Za-z0-9-_.~`` and ``%XX``, no quote
    and no backslash, and ClickHouse decodes it back to the exact value."""
    return f"decodeURLComponent('${{{name}:percentencode}}')"


def values_of(name: str) -> str:
    """A multi-valued variable as a SQL array of its values, safe the same way. Grafana
    percent-encodes a multi-value as ``{a,b}`` joined first, so the commas and braces it adds come
    out as ``%2C``, ``%7B``, ``%7D`` (a value holding a comma is split in two; it cannot escape)."""
    encoded = f"replaceRegexpAll('${{{name}:percentencode}}', '^%7B|%7D$', '')"
    return f"arrayMap(v -> decodeURLComponent(v), splitByString('%2C', {encoded}))"


def variable(name: str, label: str, sql: str, multi: bool = False) -> QueryVariable:
    """A query variable whose values come only from its query (no values typed by a viewer)."""
    built = (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(sql.strip())
        .definition(sql.strip())
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.DISABLED)
        .allow_custom_value(False)
    )
    if multi:
        built = (
            built.multi(True)
            .include_all(True)
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )
    return built


def account_health() -> Dashboard:
    """Live account health: what needs attention now."""
    n = Layout()
    return (
        board(
            "rapport-account-health",
            "Rapport · Account health (live)",
            "Tier of every account, the accounts at risk or disengaged with their top reason, "
            "health and depth trends, last touch and the pipeline's alerts.",
            "now-90d",
        )
        .with_row(row(n, "Now"))
        .with_panel(
            panel(
                n,
                piechart.Panel,
                "Accounts by tier",
                ClickHouse(f"""
SELECT tier, count() AS accounts
FROM ({LATEST_HEALTH})
GROUP BY tier
ORDER BY tier"""),
                width=8,
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "At risk and disengaged",
                ClickHouse(f"""
SELECT l.account_id AS account, a.name AS name, l.tier AS tier, round(l.score, 1) AS health,
       round(l.trend_30d, 1) AS trend_30d, l.engaged_contacts AS engaged_contacts,
       l.last_touch AS last_touch, l.top_reason AS top_reason
FROM ({LATEST_HEALTH}) AS l
LEFT JOIN {ACCOUNT_NAMES} ON a.account_id = l.account_id
WHERE l.tier IN ('at_risk', 'disengaged')
ORDER BY l.score ASC
LIMIT 100"""),
                width=16,
            )
        )
        .with_row(row(n, "Trends"))
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Average health and depth",
                ClickHouse("""
SELECT toDateTime(as_of) AS time, avg(score) AS health, avg(depth) AS depth
FROM rapport.account_health_by_day FINAL
WHERE $__dateFilter(as_of)
GROUP BY time
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Accounts per tier",
                ClickHouse("""
SELECT toDateTime(as_of) AS time,
       countIf(tier = 'healthy') AS healthy, countIf(tier = 'watch') AS watch,
       countIf(tier = 'at_risk') AS at_risk, countIf(tier = 'disengaged') AS disengaged
FROM rapport.account_health_by_day FINAL
WHERE $__dateFilter(as_of)
GROUP BY time
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Interactions by channel",
                ClickHouse(f"""
SELECT $__timeInterval(at) AS time, toString(kind) AS channel, count() AS interactions
FROM {interactions_by_time("automated = 0", at="occurred_at", kind="channel")}
GROUP BY time, channel
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Longest without a touch",
                ClickHouse(f"""
SELECT l.account_id AS account, a.name AS name, l.tier AS tier, l.last_touch AS last_touch,
       dateDiff('day', l.last_touch, $__toTime) AS days_since_touch
FROM ({LATEST_HEALTH}) AS l
LEFT JOIN {ACCOUNT_NAMES} ON a.account_id = l.account_id
ORDER BY l.last_touch ASC
LIMIT 50"""),
            )
        )
        .with_row(row(n, "Alerts"))
        .with_panel(
            panel(
                n,
                table.Panel,
                "Alerts feed",
                ClickHouse("""
SELECT raised_at, account_id AS account, kind, severity, status, subject, reason
FROM rapport.alerts FINAL
WHERE $__timeFilter(raised_at)
ORDER BY raised_at DESC
LIMIT 200"""),
                width=24,
            )
        )
    )


ACCOUNT = f"account_id = {value_of('account')}"


def account_drilldown() -> Dashboard:
    """One account in depth: why it scores what it scores."""
    n = Layout()
    return (
        board(
            "rapport-account-drilldown",
            "Rapport · Account drilldown",
            "One account: health and depth over time, who is engaged by seniority and function, "
            "every interaction, meeting preparedness, value per interaction and the explanations.",
            "now-180d",
        )
        .with_variable(
            variable(
                "account",
                "Account",
                # the accounts with a snapshot (account_health_monthly has a row per account and month
                # of them; 405 → 30 ms at 7.3 M snapshots)
                "SELECT DISTINCT account_id FROM rapport.account_health_monthly ORDER BY account_id",
            )
        )
        .with_row(row(n, "Health"))
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Health and depth",
                ClickHouse(f"""
SELECT toDateTime(as_of) AS time, score AS health, depth, trend_30d
FROM rapport.account_health FINAL
WHERE {ACCOUNT} AND $__dateFilter(as_of)
ORDER BY time""").time_series(),
                width=16,
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Engaged contacts by seniority × function",
                ClickHouse(f"""
SELECT if(c.seniority = '', 'unknown', c.seniority) AS seniority,
       if(c.department = '', 'unknown', c.department) AS function,
       uniqExact(i.buyer) AS contacts, count() AS interactions
FROM (
    SELECT arrayJoin(buyers) AS buyer
    FROM rapport.interactions FINAL
    WHERE {ACCOUNT} AND $__timeFilter(occurred_at) AND automated = 0
) AS i
LEFT JOIN (SELECT email, seniority, department FROM rapport.contacts FINAL) AS c ON c.email = i.buyer
GROUP BY seniority, function
ORDER BY contacts DESC"""),
                width=8,
            )
        )
        .with_row(row(n, "Interactions"))
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Interactions by direction",
                ClickHouse(f"""
SELECT $__timeInterval(occurred_at) AS time, toString(direction) AS direction, count() AS interactions
FROM rapport.interactions FINAL
WHERE {ACCOUNT} AND $__timeFilter(occurred_at) AND automated = 0
GROUP BY time, direction
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Value per interaction",
                ClickHouse(f"""
SELECT occurred_at AS time, score AS value
FROM rapport.interaction_value FINAL
WHERE {ACCOUNT} AND $__timeFilter(occurred_at)
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Meeting preparedness",
                ClickHouse(f"""
SELECT starts_at, seller, round(score) AS preparedness, tier, status, buyer_attendees,
       arrayStringConcat(missing, ', ') AS missing
FROM rapport.meeting_preparedness FINAL
WHERE {ACCOUNT} AND $__timeFilter(starts_at)
ORDER BY starts_at DESC
LIMIT 100"""),
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Interactions and their value",
                ClickHouse(f"""
SELECT i.occurred_at AS occurred_at, i.channel AS channel, toString(i.direction) AS direction,
       i.kind AS kind, i.status AS status, length(i.buyers) AS buyers,
       round(v.score) AS value, arrayStringConcat(v.outcomes, ', ') AS outcomes
FROM (SELECT * FROM rapport.interactions FINAL WHERE {ACCOUNT} AND $__timeFilter(occurred_at)) AS i
LEFT JOIN (SELECT interaction_id, score, outcomes FROM rapport.interaction_value FINAL WHERE {ACCOUNT})
    AS v ON v.interaction_id = i.interaction_id
ORDER BY i.occurred_at DESC
LIMIT 200"""),
            )
        )
        .with_row(row(n, "Why"))
        .with_panel(
            panel(
                n,
                table.Panel,
                "Explanations",
                ClickHouse(f"""
SELECT as_of, round(score, 1) AS health, tier, top_reason, arrayStringConcat(coverage, ', ') AS coverage,
       explanation
FROM rapport.account_health FINAL
WHERE {ACCOUNT} AND $__dateFilter(as_of)
ORDER BY as_of DESC
LIMIT 60"""),
                width=24,
            )
        )
    )


TEAM = f"$__conditionalAll(has({values_of('team')}, s.team), $team)"
PREPAREDNESS = f"""
    rapport.meeting_preparedness AS p FINAL
    LEFT JOIN {SELLER_TEAMS} ON s.email = p.seller
    WHERE $__timeFilter(p.starts_at) AND {TEAM}"""


def seller_preparedness() -> Dashboard:
    """How prepared sellers show up, and what they lack."""
    n = Layout()
    return (
        board(
            "rapport-seller-preparedness",
            "Rapport · Seller preparedness",
            "Share of meetings where the seller was very prepared (score ≥ 75), by seller and "
            "team over time, and the signals unprepared meetings lacked most.",
            "now-180d",
        )
        .with_variable(
            variable(
                "team",
                "Team",
                "SELECT DISTINCT team FROM rapport.sellers FINAL WHERE team != '' ORDER BY team",
                multi=True,
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Very prepared share by team",
                ClickHouse(f"""
SELECT $__timeInterval(p.starts_at) AS time, if(s.team = '', 'no team', s.team) AS team,
       avg(p.tier = 'very_prepared') AS very_prepared_share
FROM {PREPAREDNESS}
GROUP BY time, team
ORDER BY time""").time_series(),
                unit="percentunit",
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Very prepared share by seller",
                ClickHouse(f"""
SELECT $__timeInterval(p.starts_at) AS time, p.seller AS seller,
       avg(p.tier = 'very_prepared') AS very_prepared_share
FROM {PREPAREDNESS}
GROUP BY time, seller
ORDER BY time""").time_series(),
                unit="percentunit",
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Sellers",
                ClickHouse(f"""
SELECT p.seller AS seller, any(s.team) AS team, count() AS meetings,
       round(avg(p.tier = 'very_prepared'), 3) AS very_prepared_share,
       round(avg(p.score), 1) AS average_preparedness
FROM {PREPAREDNESS}
GROUP BY seller
ORDER BY very_prepared_share DESC"""),
            )
        )
        .with_panel(
            panel(
                n,
                barchart.Panel,
                "What unprepared meetings lacked",
                ClickHouse(f"""
SELECT signal, count() AS meetings
FROM (SELECT arrayJoin(p.missing) AS signal FROM {PREPAREDNESS} AND p.tier = 'unprepared')
GROUP BY signal
ORDER BY meetings DESC"""),
            )
        )
    )


QUARTER = f"toDateOrZero({value_of('quarter')})"
QUARTER_CHANGE = f"""
    SELECT account_id,
           q_score AS health_q, prev_score AS health_prev,
           q_depth AS depth_q, prev_depth AS depth_prev,
           q_cells AS cells_q, prev_cells AS cells_prev,
           prev_rows AS known_before
    FROM ({
    latest_health(
        ("score", "depth", "cells"),
        prev=(f"addQuarters({QUARTER}, -1)", QUARTER, "<"),
        q=(QUARTER, f"addQuarters({QUARTER}, 1)", "<"),
    )
})"""


def quarterly_review() -> Dashboard:
    """The quarter against the one before: what changed, per account."""
    n = Layout()
    return (
        board(
            "rapport-quarterly-review",
            "Rapport · Quarterly relationship review",
            "For the chosen quarter against the one before: health, depth and coverage change per "
            "account, the accounts that improved and declined, and the moments of most value.",
            "now-1y",
        )
        .with_variable(
            variable(
                "quarter",
                "Quarter",
                # The quarters from the first mail to the last, newest first: silent days close
                # too (issue 13), so health rows run on after the last mail (a historical
                # import's up to MAX_GAP_DAYS after it); a quarter of those alone has no
                # interactions to review. No FINAL: versions of a row share its time, and FINAL
                # on interactions costs 0.6-2 s. min and max, not DISTINCT over every row
                # (bench/queries.py, 10 M interactions: 236 → 31 ms).
                "SELECT toString(addQuarters(toStartOfQuarter(first), arrayJoin(range(toUInt32("
                "dateDiff('quarter', toStartOfQuarter(first), toStartOfQuarter(last)) + 1))))) "
                "AS quarter FROM (SELECT min(occurred_at) AS first, max(occurred_at) AS last "
                "FROM rapport.interactions HAVING count() > 0) ORDER BY quarter DESC",
            )
        )
        .with_panel(
            panel(
                n,
                stat.Panel,
                "Accounts improved / declined (health ±5)",
                ClickHouse(f"""
SELECT countIf(health_q - health_prev >= 5) AS improved,
       countIf(health_q - health_prev <= -5) AS declined,
       count() AS accounts
FROM ({QUARTER_CHANGE})
WHERE known_before"""),
                width=8,
            )
        )
        .with_panel(
            panel(
                n,
                barchart.Panel,
                "Largest health changes",
                ClickHouse(f"""
SELECT q.account_id AS account, round(q.health_q - q.health_prev, 1) AS health_change
FROM ({QUARTER_CHANGE}) AS q
WHERE q.known_before
ORDER BY abs(health_change) DESC
LIMIT 20"""),
                width=16,
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Quarter over quarter by account",
                ClickHouse(f"""
SELECT q.account_id AS account, a.name AS name,
       round(q.health_q, 1) AS health, round(q.health_q - q.health_prev, 1) AS health_change,
       round(q.depth_q, 1) AS depth, round(q.depth_q - q.depth_prev, 1) AS depth_change,
       q.cells_q AS coverage_cells, toInt64(q.cells_q) - toInt64(q.cells_prev) AS coverage_change
FROM ({QUARTER_CHANGE}) AS q
LEFT JOIN {ACCOUNT_NAMES} ON a.account_id = q.account_id
ORDER BY health_change ASC"""),
                width=24,
                height=10,
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Value moments",
                ClickHouse(f"""
SELECT occurred_at, account_id AS account, channel, toString(direction) AS direction, seller,
       round(score) AS value, arrayStringConcat(outcomes, ', ') AS outcomes
FROM rapport.interaction_value FINAL
WHERE occurred_at >= {QUARTER} AND occurred_at < addQuarters({QUARTER}, 1)
ORDER BY score DESC, occurred_at
LIMIT 25"""),
                width=24,
            )
        )
    )


def pipeline_operations() -> Dashboard:
    """Is the pipeline keeping up, and what does it reject?"""
    n = Layout()
    return (
        board(
            "rapport-pipeline-operations",
            "Rapport · Pipeline operations",
            "Interactions per minute by event time and by ingest time, ingest lag, dead letters by "
            "reason and stage, identity match quality, automated mail filtered.",
            "now-24h",
        )
        .with_row(row(n, "Throughput"))
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Interactions per minute (event time)",
                ClickHouse(f"""
SELECT $__timeInterval(at) AS time, count() * 60 / $__interval_s AS per_minute
FROM {interactions_by_time(at="occurred_at")}
GROUP BY time
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Interactions per minute (ingest time)",
                ClickHouse(f"""
SELECT $__timeInterval(ingested) AS time, count() * 60 / $__interval_s AS per_minute
FROM {latest_interactions("ingested_at", ingested="ingested_at")}
GROUP BY time
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Ingest lag (ingested − occurred)",
                ClickHouse(f"""
SELECT $__timeInterval(ingested) AS time,
       quantile(0.5)(dateDiff('second', at, ingested)) AS p50_s,
       max(dateDiff('second', at, ingested)) AS max_s
FROM {latest_interactions("ingested_at", at="occurred_at", ingested="ingested_at")}
GROUP BY time
ORDER BY time""").time_series(),
                unit="s",
                description="Event-time lag: replays of old history show their age here.",
            )
        )
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Automated mail share",
                ClickHouse(f"""
SELECT $__timeInterval(at) AS time, avg(bulk) AS automated_share
FROM {interactions_by_time("channel = 'email'", at="occurred_at", bulk="automated")}
GROUP BY time
ORDER BY time""").time_series(),
                unit="percentunit",
            )
        )
        .with_row(row(n, "Dead letters"))
        .with_panel(
            panel(
                n,
                timeseries.Panel,
                "Dead letters by stage",
                ClickHouse("""
SELECT $__timeInterval(ingested_at) AS time, toString(stage) AS stage, count() AS rejected
FROM rapport.rejected_events FINAL
WHERE $__timeFilter(ingested_at)
GROUP BY time, stage
ORDER BY time""").time_series(),
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Dead letters by reason",
                ClickHouse("""
SELECT stage, topic, reason, count() AS rejected, max(ingested_at) AS last_seen
FROM rapport.rejected_events FINAL
WHERE $__timeFilter(ingested_at)
GROUP BY stage, topic, reason
ORDER BY rejected DESC
LIMIT 100"""),
            )
        )
        .with_row(row(n, "Identity"))
        .with_panel(
            panel(
                n,
                stat.Panel,
                "Unmatched (no account)",
                ClickHouse("""
SELECT count() AS unmatched
FROM rapport.rejected_events FINAL
WHERE $__timeFilter(ingested_at) AND reason LIKE 'unmatched%'"""),
                width=6,
            )
        )
        .with_panel(
            panel(
                n,
                table.Panel,
                "Match method and confidence",
                ClickHouse(f"""
SELECT toString(method) AS match_method, count() AS interactions,
       round(avg(confidence), 3) AS average_confidence,
       countIf(confidence <= 0.5) AS low_confidence
FROM {latest_interactions("occurred_at", method="match_method", confidence="match_confidence")}
GROUP BY match_method
ORDER BY interactions DESC"""),
                width=9,
            )
        )
        .with_panel(
            panel(
                n,
                barchart.Panel,
                "Match confidence distribution",
                ClickHouse(f"""
SELECT toString(floor(score, 1)) AS confidence, count() AS interactions
FROM {latest_interactions("occurred_at", score="match_confidence")}
GROUP BY confidence
ORDER BY confidence"""),
                width=9,
            )
        )
    )


BOARDS: dict[str, Callable[[], Dashboard]] = {
    "account-health": account_health,
    "account-drilldown": account_drilldown,
    "seller-preparedness": seller_preparedness,
    "quarterly-review": quarterly_review,
    "pipeline-operations": pipeline_operations,
}


def panel_id(board: str, title: str) -> int:
    """The id of a board's panel, for links from alert rules (``__panelId__``)."""
    model = BOARDS[board]().build()
    for built in model.panels or []:
        if getattr(built, "title", None) == title and built.id_val is not None:
            return built.id_val
    raise KeyError(f"board {board} has no panel titled {title!r}")
