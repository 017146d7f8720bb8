"""Every panel, variable and alert query, macros expanded, runs on chDB against a warehouse the
real pipeline filled (replay: resolver, scoring core and sink of the live agents), and returns
the shape Grafana needs: time first for time series, a numeric value for alerts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from streams.boards.alerting import ALERT_QUERIES
from streams.boards.inventory import BoardQuery, all_queries
from streams.boards.macros import ALL, MacroError, QueryContext, expand
from streams.config import Settings
from streams.runtime.demo import run_through_pipeline
from streams.sinks.warehouse import connect
from streams.sources.dataset import write_dataset
from streams.sources.reader import read_sources
from streams.sources.synthetic import SELLER_DOMAIN, generate

NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")
TIME = re.compile(r"^(Nullable\()?(DateTime|Date)")
# A filter can leave this one empty; its row count is checked against the health rows instead.
AT_RISK = "rapport-account-health / At risk and disengaged"
QUERIES = all_queries()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory):
    """Ten accounts over five months (two quarters) through the live pipeline (embedded broker,
    faust worker, chDB), as `rapport ingest` runs it; then the warehouse is opened here."""
    root = tmp_path_factory.mktemp("boards")
    events, labels = generate(10, seed=11, days=150)
    write_dataset(root / "data", events, labels)
    env = Settings.from_env(
        {
            "RAPPORT_HOME": str(root / "home"),
            "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN,
            "RAPPORT_BROKER_SESSION_TIMEOUT_S": "3",
            "RAPPORT_BROKER_REBALANCE_TIMEOUT_S": "3",
        }
    )
    status = run_through_pipeline(
        lambda: read_sources([root / "data"]), env, Console(quiet=True), timeout_s=300
    )
    assert status["counters"]["events"] == len(events)
    client = connect(env.warehouse_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def context(filled) -> QueryContext:
    """The dashboard range covers the data and now (ingest time); variables take their first
    value, as Grafana does on load, so variable queries are exercised too."""
    first, last = filled.query(
        "SELECT min(occurred_at), max(occurred_at) FROM rapport.interactions FINAL"
    ).result_rows[0]
    start = first.replace(tzinfo=UTC)
    end = max(last.replace(tzinfo=UTC), datetime.now(UTC)) + timedelta(days=1)
    range_only = QueryContext(start, end, interval_s=86400)
    variables: dict[str, str | list[str]] = {}
    for query in QUERIES:
        if query.kind == "variable":
            rows = filled.query(expand(query.sql, range_only)).result_rows
            variables[query.where.split("$")[1]] = rows[0][0] if rows else ""
    variables["team"] = [ALL]
    return QueryContext(start, end, interval_s=86400, variables=variables)


# The time column of each table an alert reads.
ALERT_TIME = {"account_health": "as_of", "alerts": "raised_at"}


def alert_context(filled, query: BoardQuery) -> QueryContext:
    """An alert evaluated the day after the newest row of the table it reads (a health snapshot,
    a raised alert), over its own window: silent days close too, so the newest health snapshot
    can be months after the newest alert. Of the health tables the daily one is read (the monthly
    summary holds the same days)."""
    (table,) = set(re.findall(r"rapport\.(\w+)", query.sql)) - {"account_health_monthly"}
    (newest,) = filled.query(f"SELECT max({ALERT_TIME[table]}) FROM rapport.{table} FINAL").result_rows[0]
    at = datetime(newest.year, newest.month, newest.day, tzinfo=UTC) + timedelta(days=1)
    window = next(a.window_s for a in ALERT_QUERIES if a.uid == query.where)
    return QueryContext(at - timedelta(seconds=window), at)


def populated(filled, sql: str) -> bool:
    tables = set(re.findall(r"rapport\.(\w+)", sql))
    return all(filled.query(f"SELECT count() FROM rapport.{t}").result_rows[0][0] > 0 for t in tables)


def test_the_pipeline_filled_the_warehouse(filled):
    counts = dict(
        filled.query(
            "SELECT 'interactions', count() FROM rapport.interactions UNION ALL "
            "SELECT 'account_health', count() FROM rapport.account_health UNION ALL "
            "SELECT 'accounts', count() FROM rapport.accounts"
        ).result_rows
    )
    assert counts["interactions"] > 1000 and counts["account_health"] > 500 and counts["accounts"] == 10


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_query_runs_and_has_the_shape_grafana_needs(filled, context, query: BoardQuery):
    ctx = alert_context(filled, query) if query.kind == "alert" else context
    sql = expand(query.sql, ctx, server_only=query.server_only)
    assert "$" not in sql.replace("$__all", ""), f"unexpanded macro or variable in {query.where}: {sql}"
    columns = filled.query(f"DESCRIBE TABLE ({sql})").result_rows
    names, types = [c[0] for c in columns], [c[1] for c in columns]
    assert names, query.where
    if query.kind == "time_series":
        assert TIME.match(types[0]), f"{query.where}: first column {names[0]} is {types[0]}, not a time"
        assert any(NUMERIC.match(t) for t in types[1:]), f"{query.where}: no numeric value column"
    if query.kind == "alert":
        numeric = [n for n, t in zip(names, types, strict=True) if NUMERIC.match(t)]
        assert len(numeric) == 1, f"{query.where}: alerts need exactly one numeric value, got {numeric}"
        assert all("String" in t for n, t in zip(names, types, strict=True) if n not in numeric), (
            "labels are strings"
        )
    if query.kind == "variable":
        assert "String" in types[0] or TIME.match(types[0]), f"{query.where}: values are {types[0]}"

    rows = filled.query(sql).result_rows
    if query.kind == "time_series":
        times = [row[0] for row in rows]
        assert times == sorted(times), f"{query.where}: Grafana needs rows in time order"
    if query.where == AT_RISK:
        expected = filled.query(
            "SELECT countIf(t IN ('at_risk', 'disengaged')) FROM (SELECT argMax(tier, as_of) AS t "
            "FROM rapport.account_health FINAL "
            f"WHERE as_of <= toDate('{ctx.time_to:%Y-%m-%d}') GROUP BY account_id)"
        ).result_rows[0][0]
        assert len(rows) == expected
    elif populated(filled, query.sql):
        assert rows, f"{query.where} returned nothing although every table it reads has rows"


def test_alert_sql_rejects_dashboard_only_macros():
    ctx = QueryContext(
        datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), variables={"a": "x"}
    )
    with pytest.raises(MacroError, match="server-side"):
        expand("SELECT 1 WHERE account_id = ${a:singlequote}", ctx, server_only=True)
    with pytest.raises(MacroError, match="server-side"):
        expand("SELECT 1 WHERE $__conditionalAll(x IN (${a:singlequote}), $a)", ctx, server_only=True)
    with pytest.raises(MacroError, match="not a server-side macro"):
        expand("SELECT 1 WHERE $__timeFilterr(t)", ctx)


def test_macros_expand_like_the_plugin():
    ctx = QueryContext(
        datetime(2025, 7, 1, tzinfo=UTC),
        datetime(2025, 7, 2, 12, tzinfo=UTC),
        interval_s=300,
        variables={"team": ["East", "O'Neil\\"], "all": [ALL], "one": "a b/c'd"},
    )
    sql = expand(
        "SELECT $__timeInterval(t) AS time FROM x WHERE $__timeFilter(t) AND $__dateFilter(d) "
        "AND $__conditionalAll(team IN (${team:singlequote}), $team) AND o = '${one:percentencode}' "
        "AND p IN ($team) AND q = '${team:percentencode}' "
        "AND $__conditionalAll(k IN ($all), $all) "
        "AND n < $__interval_s AND m >= $__fromTime_ms",
        ctx,
    )
    assert sql == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 300 second) AS time FROM x "
        "WHERE t >= toDateTime(1751328000) AND t <= toDateTime(1751457600) "
        "AND d >= toDate('2025-07-01') AND d <= toDate('2025-07-02') "
        "AND team IN ('East','O\\'Neil\\') AND o = 'a%20b%2Fc%27d' "
        "AND p IN ('East','O'Neil\\') AND q = '%7BEast%2CO%27Neil%5C%7D' "
        "AND 1=1 AND n < 300 AND m >= fromUnixTimestamp64Milli(1751328000000)"
    )


def test_a_variable_without_a_value_is_named():
    ctx = QueryContext(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
    with pytest.raises(MacroError, match=r"\$account"):
        expand("SELECT 1 WHERE a = ${account:singlequote}", ctx)


def test_inventory_covers_every_board_and_alert():
    kinds = {q.kind for q in QUERIES}
    assert kinds == {"time_series", "table", "variable", "alert"}
    assert len([q for q in QUERIES if q.kind == "alert"]) == len(ALERT_QUERIES)
    assert len({q.where.split(" / ")[0] for q in QUERIES if q.kind != "alert"}) == 5
