"""Dashboard and alert query latency on a large warehouse: 10 million interactions, 20,000
accounts, a year of daily health snapshots (7.3 million rows), generated with ClickHouse SQL
(INSERT … SELECT FROM numbers()) into a fresh chDB folder.

    python bench/queries.py [--interactions 10000000] [--accounts 20000] [--runs 5] [--json]

Each run is recorded in ``bench/results/queries-<UTC time>.json`` with the machine and commit.
Each query is expanded as Grafana would (the board's default time range ending at the newest
data, about 1,000 points per time series, variables at their first value, "All" teams) and run
once to warm up, then --runs times. Prints p50 and max milliseconds per query; with --json the
last line is the same as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from record import machine, record

from streams.boards.alerting import ALERT_QUERIES
from streams.boards.files import dashboard_json
from streams.boards.inventory import BoardQuery, all_queries
from streams.boards.macros import ALL, QueryContext, expand
from streams.sinks.warehouse import connect, migrate

DAYS = 365
START = "toDateTime64('2025-01-01 00:00:00', 3, 'UTC')"
RANGES = {"now-24h": 1, "now-90d": 90, "now-180d": 180, "now-1y": 365}


def fill(client, interactions: int, accounts: int) -> dict[str, float]:
    """Generated rows shaped like the pipeline's; returns seconds per table."""
    seconds_per_event = DAYS * 86400 / interactions
    statements = {
        "accounts": f"""
            INSERT INTO rapport.accounts (account_id, name, domains, owner, industry, provisional, source,
                                          updated_at, version)
            SELECT concat('account', toString(number), '.com'), concat('Account ', toString(number)),
                   [concat('account', toString(number), '.com')], concat('seller', toString(number % 200)),
                   'software', 0, 'crm', {START}, 1
            FROM numbers({accounts})""",
        "sellers": f"""
            INSERT INTO rapport.sellers (seller_id, name, email, manager, team, source, updated_at, version)
            SELECT concat('s', toString(number)), concat('Seller ', toString(number)),
                   concat('seller', toString(number), '@rapport.example'), 'manager',
                   ['East', 'West', 'Central', 'Enterprise'][number % 4 + 1], 'crm', {START}, 1
            FROM numbers(200)""",
        "contacts": f"""
            INSERT INTO rapport.contacts (email, contact_id, account_id, name, title, active, source,
                                          updated_at, version, seniority, department)
            SELECT concat('c', toString(number % 5), '@account', toString(intDiv(number, 5)), '.com'),
                   toString(number), concat('account', toString(intDiv(number, 5)), '.com'),
                   'Contact', 'Title', 1, 'crm', {START}, 1,
                   ['exec', 'senior', 'manager', 'individual'][number % 4 + 1],
                   ['sales', 'finance', 'it', 'operations', 'legal'][number % 5 + 1]
            FROM numbers({accounts * 5})""",
        "interactions": f"""
            INSERT INTO rapport.interactions (interaction_id, account_id, occurred_at, channel, direction,
                kind, sellers, buyers, thread_id, in_reply_to, status, automated, match_method,
                match_confidence, source_event_id, detail, version, ingested_at)
            SELECT toString(number), concat('account', toString(number % {accounts}), '.com'),
                   {START} + toIntervalMillisecond(toUInt64(number * {seconds_per_event * 1000:.3f})),
                   ['email', 'email', 'email', 'meeting', 'crm'][number % 5 + 1],
                   ['outbound', 'inbound', 'internal', 'mutual'][number % 4 + 1],
                   'message', [concat('seller', toString(number % 200), '@rapport.example')],
                   [concat('c', toString(number % 5), '@account', toString(number % {accounts}), '.com')],
                   '', '', '', toUInt8(number % 7 = 0), ['domain', 'contact', 'crm'][number % 3 + 1],
                   [0.4, 0.8, 1.0][number % 3 + 1], toString(number), '', 1,
                   {START} + toIntervalMillisecond(toUInt64(number * {seconds_per_event * 1000:.3f}) + 2000)
            FROM numbers({interactions})""",
        "account_health": f"""
            INSERT INTO rapport.account_health (account_id, as_of, score, tier, depth, engaged_contacts,
                explanation, model_version, version, trend_30d, seniority_coverage, function_coverage,
                sellers_engaged, coverage, last_touch, top_reason)
            SELECT concat('account', toString(number % {accounts}), '.com') AS account,
                   toDate('2025-01-01') + intDiv(number, {accounts}) AS day,
                   (number * 7919) % 100 AS s,
                   multiIf(s >= 70, 'healthy', s >= 50, 'watch', s >= 30, 'at_risk', 'disengaged'),
                   s / 10, toUInt32(s % 9), '{{}}', 'health-1', 1, (s % 21) - 10, 2, 3, 2,
                   ['exec:sales', 'manager:it'], toDateTime64(day, 3, 'UTC'), 'few engaged contacts'
            FROM numbers({accounts * DAYS})""",
        "meeting_preparedness": f"""
            INSERT INTO rapport.meeting_preparedness (meeting_id, account_id, starts_at, seller, score,
                explanation, model_version, version, status, tier, buyer_attendees, missing)
            SELECT toString(number), concat('account', toString(number % {accounts}), '.com'),
                   {START} + toIntervalSecond(number * {20 * seconds_per_event:.3f}),
                   concat('seller', toString(number % 200), '@rapport.example'),
                   (number * 31) % 100 AS s, '{{}}', 'prep-1', 1, 'held',
                   multiIf(s >= 75, 'very_prepared', s >= 40, 'prepared', 'unprepared'), 2,
                   if(s < 40, ['agenda_shared', 'recent_crm_work'], [])
            FROM numbers({interactions // 20})""",
        "interaction_value": f"""
            INSERT INTO rapport.interaction_value (interaction_id, account_id, occurred_at, score,
                explanation, model_version, version, channel, direction, seller, buyers, outcomes)
            SELECT toString(number * 5), concat('account', toString(number * 5 % {accounts}), '.com'),
                   {START} + toIntervalSecond(number * {5 * seconds_per_event:.3f}), (number * 13) % 100,
                   '{{}}', 'value-1', 1,
                   'email', 'outbound', 'seller1@rapport.example', ['c1@x.com'], ['replied']
            FROM numbers({interactions // 5})""",
        "alerts": f"""
            INSERT INTO rapport.alerts (alert_id, account_id, raised_at, kind, severity, reason, explanation,
                model_version, version, status, subject, ended_at)
            SELECT toString(number), concat('account', toString(number % {accounts}), '.com'),
                   {START} + toIntervalSecond(number * 600), ['tier_drop', 'silent_contact'][number % 2 + 1],
                   ['high', 'medium'][number % 2 + 1], 'reason', '{{}}', 'health-1', 1,
                   ['open', 'resolved'][number % 2 + 1], '', {START}
            FROM numbers({DAYS * 144})""",
        "rejected_events": f"""
            INSERT INTO rapport.rejected_events (rejected_id, topic, stage, reason, original, partition,
                                                 offset, version, ingested_at)
            SELECT toString(number), 'raw', ['ingest', 'resolve', 'score'][number % 3 + 1],
                   ['unmatched: no buyer account', 'schema: missing field', 'only seller-side participants'][
                       number % 3 + 1], '', 0, number, 0, {START} + toIntervalSecond(number * 300)
            FROM numbers({DAYS * 288})""",
    }
    timings = {}
    for table, sql in statements.items():
        started = time.perf_counter()
        # ingested_at is MATERIALIZED (set by the server); the benchmark writes it to spread it in time
        client.command(sql, settings={"insert_allow_materialized_columns": 1})
        timings[table] = round(time.perf_counter() - started, 1)
    return timings


def contexts(client, queries: list[BoardQuery]) -> dict[str, QueryContext]:
    """Each board's default range ending at the newest data; alerts over their own window."""
    (end,) = client.query("SELECT max(occurred_at) FROM rapport.interactions").result_rows[0]
    end = end.replace(tzinfo=UTC)
    found = {}
    for model in dashboard_json().values():
        start = end - timedelta(days=RANGES[model["time"]["from"]])
        interval = max(int((end - start).total_seconds() / 1000), 1)
        bare = QueryContext(start, end, interval)
        variables: dict[str, str | list[str]] = {"team": [ALL]}
        for q in queries:
            if q.kind == "variable" and q.board == model["uid"]:
                rows = client.query(expand(q.sql, bare)).result_rows
                variables[q.where.split("$")[1]] = rows[0][0] if rows else ""
        found[model["uid"]] = QueryContext(start, end, interval, variables)
    for alert in ALERT_QUERIES:
        found[alert.uid] = QueryContext(end - timedelta(seconds=alert.window_s), end)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interactions", type=int, default=10_000_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-record", action="store_true", help="do not write bench/results/")
    args = parser.parse_args()
    at, before = datetime.now(UTC), machine()
    queries = all_queries()
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{Path(tmp) / 'warehouse'}")
        migrate(client)
        started = time.perf_counter()
        fill_s = fill(client, args.interactions, args.accounts)
        print(f"filled in {time.perf_counter() - started:.0f} s: {fill_s}")
        by_board = contexts(client, queries)
        results: list[dict[str, Any]] = []
        for q in queries:
            context = by_board[q.where if q.kind == "alert" else q.board]
            sql = expand(q.sql, context, server_only=q.server_only)
            rows = len(client.query(sql).result_rows)  # warm-up
            times = []
            for _ in range(args.runs):
                begun = time.perf_counter()
                client.query(sql)
                times.append((time.perf_counter() - begun) * 1000)
            results.append(
                {
                    "query": q.where,
                    "rows": rows,
                    "p50_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                }
            )
        client.close()  # type: ignore[attr-defined]
    width = max(len(r["query"]) for r in results)
    print(f"{'query':<{width}}  {'rows':>7}  {'p50 ms':>8}  {'max ms':>8}")
    for r in results:
        print(f"{r['query']:<{width}}  {r['rows']:>7,}  {r['p50_ms']:>8,.1f}  {r['max_ms']:>8,.1f}")
    summary = {
        "interactions": args.interactions,
        "accounts": args.accounts,
        "fill_seconds": fill_s,
        "slowest_p50_ms": max(r["p50_ms"] for r in results),
        "queries": results,
    }
    if not args.no_record:
        print(f"recorded: {record('queries', at, vars(args), summary, before)}")
    if args.json:
        print(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
