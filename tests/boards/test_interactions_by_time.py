"""The panels that read ``interactions_by_time`` (migration 007) count exactly what
``interactions FINAL`` holds in the range: every interaction once, at the time of its winning
version, also when meetings and CRM activities move between writes (later versions, ties, an
older version arriving late), after forget deletes some outright, and on a warehouse upgraded
with interactions already in it (the migration's backfill)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.boards.dashboards import interactions_by_time
from streams.boards.macros import QueryContext, expand
from streams.runtime.forget import resync_by_time
from streams.sinks.warehouse import Sink, connect, migrate

START = datetime(2025, 3, 1, tzinfo=UTC)
# The board's query (account health, "Interactions by channel") and the same count from the table
# itself: the latest version of each (account, interaction) as FINAL keeps it.
BOARD = f"""
SELECT $__timeInterval(at) AS time, toString(kind) AS channel, count() AS interactions
FROM {interactions_by_time("automated = 0", at="occurred_at", kind="channel")}
GROUP BY time, channel"""
REFERENCE = """
SELECT $__timeInterval(occurred_at) AS time, toString(channel) AS ch, count() AS interactions
FROM rapport.interactions FINAL
WHERE $__timeFilter(occurred_at) AND automated = 0
GROUP BY time, ch"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    found = connect(f"chdb://{tmp_path_factory.mktemp('by-time') / 'warehouse'}")
    migrate(found)
    yield found
    found.close()  # type: ignore[attr-defined]


def interaction(account: str, number: int, channel: str, minutes: int, version: int, automated: bool) -> dict:
    # An email's time is fixed by its id (a Message-ID and its Date header); the rest may move.
    if channel == "email":
        minutes = number * 997
    return {
        "interaction_id": f"{channel}:{account}:{number}",
        "account_id": account,
        "occurred_at": START + timedelta(minutes=minutes, microseconds=number * 1001),
        "channel": channel,
        "direction": "mutual",
        "kind": channel,
        "sellers": ["seller@demo-seller.com"],
        "buyers": [f"buyer{number}@{account}"],
        "thread_id": "",
        "in_reply_to": "",
        "status": "",
        "automated": int(automated),
        "match_method": "crm",
        "match_confidence": 1.0,
        "source_event_id": f"event:{number}:{version}:{minutes}",
        "detail": "{}",
        "version": version,
    }


writes = st.lists(
    st.tuples(
        st.sampled_from(["a.com", "b.com"]),
        st.integers(0, 5),
        st.sampled_from(["email", "meeting", "crm"]),
        st.integers(0, 60 * 24 * 20),
        st.integers(0, 3),
        st.booleans(),
    ).map(lambda t: interaction(*t)),
    min_size=1,
    max_size=12,
)


def fill(client, batches: list[list[dict]]) -> None:
    for table in ("interactions", "interactions_by_time"):
        client.command(f"TRUNCATE TABLE rapport.{table}")
    sink = Sink(client)
    for number, batch in enumerate(batches):
        sink.write_now({"interactions": batch}, f"test:{number}")


def counted(client, sql: str, context: QueryContext) -> list[tuple]:
    return sorted(client.query(expand(sql, context)).result_rows)


def assert_same(client, context: QueryContext) -> None:
    assert counted(client, BOARD, context) == counted(client, REFERENCE, context)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(writes, min_size=1, max_size=5),
    first_day=st.integers(-2, 20),
    days=st.integers(0, 25),
    interval=st.sampled_from([60, 3600, 86400]),
)
def test_the_board_counts_what_interactions_final_holds(client, batches, first_day, days, interval):
    fill(client, batches)
    begin = START + timedelta(days=first_day)
    assert_same(client, QueryContext(begin, begin + timedelta(days=days), interval_s=interval))


def test_a_moved_meeting_counts_once_at_its_new_time(client):
    meeting = interaction("a.com", 1, "meeting", 60, 0, False)
    moved = dict(meeting, occurred_at=START + timedelta(days=3), version=1)
    late = dict(meeting, occurred_at=START + timedelta(days=5), version=0)  # an older version, late
    fill(client, [[meeting], [moved], [late]])
    whole = QueryContext(START - timedelta(days=1), START + timedelta(days=10), interval_s=86400)
    assert counted(client, BOARD, whole) == [(datetime(2025, 3, 4), "meeting", 1)]  # day buckets
    assert_same(client, whole)


def test_forget_deletes_and_an_upgrade_backfills(client):
    rows = [
        interaction(a, n, c, n * 50, 1, False)
        for a in ("a.com", "b.com")
        for n in range(6)
        for c in ("email", "meeting")
    ]
    moved = [
        dict(r, occurred_at=r["occurred_at"] + timedelta(days=2), version=2)
        for r in rows
        if r["channel"] == "meeting"
    ]
    fill(client, [rows, moved])
    whole = QueryContext(START - timedelta(days=1), START + timedelta(days=30), interval_s=3600)
    assert_same(client, whole)
    # what forget does to interactions deleted outright: their rows, then resync_by_time
    gone = [("a.com", "meeting:a.com:2"), ("b.com", "email:b.com:3")]
    listed = "[" + ", ".join(f"('{a}', '{i}')" for a, i in gone) + "]"
    client.command(
        f"ALTER TABLE rapport.interactions DELETE WHERE (account_id, interaction_id) IN {listed}",
        settings={"mutations_sync": 2},
    )
    resync_by_time(client, gone)
    assert_same(client, whole)
    total = sum(r[2] for r in counted(client, BOARD, whole))
    assert total == len(rows) - len(gone)
    # a warehouse with interactions from before migration 007
    client.command("DROP VIEW rapport.interactions_by_time_mv")
    client.command("DROP TABLE rapport.interactions_by_time")
    client.command(
        "ALTER TABLE rapport.schema_migrations DELETE WHERE version = 7", settings={"mutations_sync": 2}
    )
    assert migrate(client) == ["007_interactions_by_time"]
    assert_same(client, whole)
