"""The health queries that read ``account_health_monthly`` (migration 005) return exactly what
the ``FINAL`` queries they replaced return, for any day and any quarter (also one that does not
start a month), with rewritten versions of a day arriving in later inserts, after a forget-style
delete, and on a warehouse upgraded with snapshots already in it (the migration's backfill)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.boards.alerting import ALERT_QUERIES
from streams.boards.dashboards import LATEST_HEALTH, QUARTER_CHANGE
from streams.boards.macros import QueryContext, expand
from streams.runtime.forget import delete_accounts
from streams.sinks.warehouse import SUMMARIES, connect, migrate

# The queries before migration 005, kept as the reference.
OLD_LATEST_HEALTH = """
    SELECT account_id,
           max(h.as_of) AS snapshot,
           argMax(score, h.as_of) AS score,
           argMax(tier, h.as_of) AS tier,
           argMax(depth, h.as_of) AS depth,
           argMax(trend_30d, h.as_of) AS trend_30d,
           argMax(engaged_contacts, h.as_of) AS engaged_contacts,
           argMax(last_touch, h.as_of) AS last_touch,
           argMax(top_reason, h.as_of) AS top_reason
    FROM rapport.account_health AS h FINAL
    WHERE h.as_of <= toDate($__toTime)
    GROUP BY account_id"""
Q = "toDateOrZero(decodeURLComponent('${quarter:percentencode}'))"
OLD_QUARTER_CHANGE = f"""
    SELECT account_id,
           argMaxIf(score, as_of, as_of >= {Q}) AS health_q,
           argMaxIf(score, as_of, as_of < {Q}) AS health_prev,
           argMaxIf(depth, as_of, as_of >= {Q}) AS depth_q,
           argMaxIf(depth, as_of, as_of < {Q}) AS depth_prev,
           argMaxIf(length(coverage), as_of, as_of >= {Q}) AS cells_q,
           argMaxIf(length(coverage), as_of, as_of < {Q}) AS cells_prev,
           countIf(as_of < {Q}) > 0 AS known_before
    FROM rapport.account_health FINAL
    WHERE as_of >= addQuarters({Q}, -1) AND as_of < addQuarters({Q}, 1)
    GROUP BY account_id"""
OLD_DISENGAGED = """
SELECT account_id AS account, toFloat64(argMax(tier, as_of) = 'disengaged') AS disengaged
FROM rapport.account_health FINAL
WHERE as_of >= toDate($__fromTime) AND as_of <= toDate($__toTime)
GROUP BY account_id"""
NEW_DISENGAGED = next(a.sql for a in ALERT_QUERIES if a.uid == "rapport-account-disengaged")

START = date(2025, 1, 1)
DAYS = 240
COLUMNS = [
    "account_id",
    "as_of",
    "score",
    "tier",
    "depth",
    "engaged_contacts",
    "explanation",
    "model_version",
]
COLUMNS += ["version", "trend_30d", "coverage", "last_touch", "top_reason"]
TIERS = ["healthy", "watch", "at_risk", "disengaged"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    found = connect(f"chdb://{tmp_path_factory.mktemp('summary') / 'warehouse'}")
    migrate(found)
    yield found
    found.close()  # type: ignore[attr-defined]


def row(account: str, day: int, version: int, value: int) -> list:
    return [
        account,
        START + timedelta(days=day),
        float(value),
        TIERS[value % 4],
        value / 4,
        value % 7,
        "{}",
        "health-1",
        version,
        float(value % 11 - 5),
        ["exec:sales"] * (value % 3),
        datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=day, minutes=value),
        f"reason {value}",
    ]


# (account, day, version, value); later batches rewrite days of earlier ones with higher versions
snapshots = st.lists(
    st.tuples(st.sampled_from(["a.com", "b.com", "c.com"]), st.integers(0, DAYS - 1), st.integers(1, 6)),
    min_size=1,
    max_size=60,
)


def fill(client, batches: list[list[tuple[str, int, int]]]) -> None:
    for table in ("account_health", *SUMMARIES["account_health"]):
        client.command(f"TRUNCATE TABLE rapport.{table}")
    for batch in batches:
        # One row per (account, day, version), as the scorer writes them (a replay writes the same
        # row again): a rewritten day has a higher version, and which of two same-version rows
        # FINAL keeps is the one inserted last, which no summary can know.
        rows = {(a, d, v): row(a, d, v, (d * 7 + v * 13) % 100) for a, d, v in batch}
        client.insert("rapport.account_health", list(rows.values()), column_names=COLUMNS)


def same(client, old: str, new: str, context: QueryContext) -> None:
    expected = sorted(client.query(expand(old, context)).result_rows)
    got = sorted(client.query(expand(new, context)).result_rows)
    assert got == expected


def days(first: int, last: int) -> st.SearchStrategy[date]:
    return st.integers(first, last).map(lambda d: START + timedelta(days=d))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(snapshots, min_size=1, max_size=3),
    to=days(-5, DAYS + 40),
    window=st.integers(0, 70),
    quarter=days(-100, DAYS + 100),
)
def test_summary_queries_equal_the_final_queries(client, batches, to, window, quarter):
    fill(client, batches)
    end = datetime(to.year, to.month, to.day, 12, tzinfo=UTC)
    # any day as the quarter, as well as its quarter's start
    q_start = date(quarter.year, (quarter.month - 1) // 3 * 3 + 1, 1)
    for value in (quarter.isoformat(), q_start.isoformat()):
        context = QueryContext(end - timedelta(days=window), end, variables={"quarter": value})
        same(client, OLD_LATEST_HEALTH, LATEST_HEALTH, context)
        same(client, OLD_QUARTER_CHANGE, QUARTER_CHANGE, context)
        same(client, OLD_DISENGAGED, NEW_DISENGAGED, context)


def test_deleted_accounts_leave_the_summary_and_an_upgrade_backfills_it(client):
    batches = [
        [(a, d, 1) for a in ("a.com", "b.com", "c.com") for d in range(0, DAYS, 3)],
        [(a, d, 3) for a in ("a.com", "b.com") for d in range(0, DAYS, 5)],  # rewritten days
    ]
    fill(client, batches)
    end = datetime(2025, 6, 17, tzinfo=UTC)
    contexts = [
        QueryContext(end, end + timedelta(days=d), variables={"quarter": "2025-04-01"}) for d in (0, 14, 60)
    ]
    # what forget and rescore_late do: every score row of the accounts, and their summary rows
    delete_accounts(client, ["account_health", *SUMMARIES["account_health"]], ["b.com"])
    for context in contexts:
        same(client, OLD_LATEST_HEALTH, LATEST_HEALTH, context)
        same(client, OLD_QUARTER_CHANGE, QUARTER_CHANGE, context)
        assert "b.com" not in {r[0] for r in client.query(expand(LATEST_HEALTH, context)).result_rows}
    # a warehouse with snapshots from before migration 005
    client.command("DROP VIEW rapport.account_health_monthly_mv")
    client.command("DROP TABLE rapport.account_health_monthly")
    client.command(
        "ALTER TABLE rapport.schema_migrations DELETE WHERE version = 5", settings={"mutations_sync": 2}
    )
    assert migrate(client) == ["005_health_monthly"]
    for context in contexts:
        same(client, OLD_LATEST_HEALTH, LATEST_HEALTH, context)
        same(client, OLD_QUARTER_CHANGE, QUARTER_CHANGE, context)
