"""What the fault tests share: produce input to a live stack, and compare warehouses with replay.

The reference for "nothing lost, nothing double-counted" is ``replay`` on the same input: the
same resolver, scoring core and sink in one process, without a broker or faults.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.runtime.producer import EventProducer
from streams.runtime.replay import replay
from streams.sinks.warehouse import TABLE_KEYS, connect
from streams.sources.dataset import Rejection, SourceRecord

Snapshot = dict[str, list[tuple[Any, ...]]]
# Every table the pipeline writes except dead letters (compared on their own where relevant).
COMPARED = tuple(t for t in TABLE_KEYS if t != "rejected_events")


def produce(bootstrap: str, items: Iterable[SourceRecord | Rejection], resolver: Resolver) -> int:
    """Send ``items`` to ``raw`` (rejections to ``deadletter``); returns how many went to ``raw``."""
    with EventProducer(bootstrap, resolver) as producer:
        for item in items:
            producer.send(item)
    return sum(n for topic, n in producer.sent.items() if topic != "deadletter")


def snapshot(warehouse_url: str, tables: Iterable[str] = COMPARED) -> Snapshot:
    """Every row of ``tables`` as FINAL sees it, ordered by the table key."""
    client = connect(warehouse_url)
    try:
        return {
            table: client.query(
                f"SELECT * FROM rapport.{table} FINAL ORDER BY {', '.join(TABLE_KEYS[table])}"
            ).result_rows
            for table in tables
        }
    finally:
        client.close()


def replay_snapshot(items: Iterable[SourceRecord | Rejection], home: Path, settings: Settings) -> Snapshot:
    """The warehouse ``replay`` makes from ``items`` in a fresh folder under ``home``."""
    replayed = Settings.from_env(
        {"RAPPORT_HOME": str(home), "RAPPORT_SELLER_DOMAINS": ",".join(settings.seller_domains)}
    )
    client = connect(replayed.warehouse_url)
    try:
        replay(items, replayed, client=client)
    finally:
        client.close()
    return snapshot(replayed.warehouse_url)


def assert_same(live: Snapshot, replayed: Snapshot) -> None:
    """Table by table equality, with a few differing rows in the failure message."""
    assert len(replayed["interactions"]) > 0 and len(replayed["account_health"]) > 0
    for table in replayed:
        if live[table] != replayed[table]:
            live_rows, replay_rows = set(map(repr, live[table])), set(map(repr, replayed[table]))
            only_live = sorted(live_rows - replay_rows)[:3]
            only_replay = sorted(replay_rows - live_rows)[:3]
            pytest.fail(
                f"{table}: live has {len(live[table])} rows, replay {len(replayed[table])}\n"
                f"only live: {only_live}\nonly replay: {only_replay}"
            )
