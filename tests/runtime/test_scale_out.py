"""Scale-out: two workers in one consumer group on 8 partitions split the work and give the
results one worker gives (which is what ``replay`` gives; see tests/test_end_to_end.py).

chDB lets one process hold a warehouse folder, so each worker here writes its own folder (as
each would write to the same ClickHouse server in production); the test then loads both into
one warehouse, where the ReplacingMergeTree keys merge them as a server would.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.runtime.app import partition_of
from streams.runtime.stack import Stack
from streams.sinks.warehouse import TABLE_KEYS, connect, migrate
from streams.sources.dataset import SourceRecord
from streams.sources.synthetic import SELLER_DOMAIN, generate
from tests.runtime.live_vs_replay import assert_same, produce, replay_snapshot, snapshot

pytestmark = pytest.mark.broker

PARTITIONS = 8


def worker_settings(home: Path) -> Settings:
    env = {
        "RAPPORT_HOME": str(home),
        "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN,
        "RAPPORT_BROKER_STORAGE": "memory",  # as the suite (tests/conftest.py)
    }
    return Settings.from_env({**env, "RAPPORT_PARTITIONS": str(PARTITIONS)})


def merge_into(target_url: str, source_url: str) -> None:
    """Insert every row of one warehouse into another (the tables' keys collapse repeats)."""
    source = connect(source_url)
    try:
        tables = {t: source.query(f"SELECT * FROM rapport.{t}") for t in TABLE_KEYS if t != "rejected_events"}
        rows = {t: (r.column_names, r.result_rows) for t, r in tables.items()}
    finally:
        source.close()
    target = connect(target_url)
    try:
        migrate(target)
        for table, (columns, table_rows) in rows.items():
            if table_rows:
                target.insert(f"rapport.{table}", table_rows, column_names=list(columns))
    finally:
        target.close()


def test_two_workers_split_eight_partitions_and_match_one(tmp_path: Path) -> None:
    events, _ = generate(24, seed=31, days=30)
    items = [SourceRecord(e.source, e, e.to_bytes()) for e in events]
    first, second = worker_settings(tmp_path / "one"), worker_settings(tmp_path / "two")
    resolver = Resolver(first.seller_domains)
    accounts = {r.account_id for item in items for r in resolver.resolve(item.envelope)}
    assert len({partition_of(a, PARTITIONS) for a in accounts}) == PARTITIONS  # work for both
    with (
        Stack(first) as stack_one,
        Stack(replace(second, kafka_bootstrap=stack_one.bootstrap)) as stack_two,
    ):
        stack_one.start_workers()
        stack_two.start_workers()
        produce(stack_one.bootstrap, items, resolver)
        # Drained: the group has no lag and neither worker holds pending events.
        one = stack_one.wait_drained(0, timeout_s=240)
        two = stack_two.wait_drained(0, timeout_s=240)
    scored_one, scored_two = one["counters"]["events"], two["counters"]["events"]
    assert scored_one > 0 and scored_two > 0  # both were assigned partitions and did work
    assert scored_one + scored_two >= len(items)  # a rebalance may redo a batch, never skip one
    merge_into(first.warehouse_url, second.warehouse_url)
    assert_same(snapshot(first.warehouse_url), replay_snapshot(items, tmp_path / "replay", first))
