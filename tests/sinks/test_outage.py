"""Warehouse outage: inserts fail for a while; the sink retries with backoff, the score agent
stops taking batches, and when the warehouse is back nothing is lost.

The fault is injected at the sink's client boundary by test code (:class:`tests.faults.SwitchedOutage`,
switched by a file named in ``RAPPORT_FAULT_WAREHOUSE_OUTAGE_FILE``); the warehouse itself is real chDB.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.config import TOPIC_INTERACTIONS, Settings
from streams.identity.resolver import Resolver
from streams.runtime.stack import Stack, consumer_lag
from streams.runtime.status import read_status
from streams.sinks.warehouse import Sink
from streams.sources.dataset import SourceRecord, read_dataset
from tests.faults import FAULTY_WORKER, OUTAGE_SWITCH_ENV, SwitchedOutage
from tests.runtime.live_vs_replay import assert_same, produce, replay_snapshot, snapshot

OUTAGE_S = 8.0


async def test_sink_retries_with_growing_delays_until_the_warehouse_is_back(
    warehouse: Any, tmp_path: Path
) -> None:
    switch = tmp_path / "outage"
    switch.touch()
    delays: list[float] = []
    sink = Sink(SwitchedOutage(warehouse, switch), on_retry=lambda _t, _e, delay: delays.append(delay))
    row = {"seller_id": "s1", "name": "Ann", "email": "", "manager": "", "team": "", "source": "test"}
    row |= {"updated_at": datetime(2025, 7, 1, tzinfo=UTC), "version": 1}
    writing = asyncio.create_task(sink.write({"sellers": [row]}, "outage-test"))
    while len(delays) < 4:
        await asyncio.sleep(0.05)
    assert not writing.done()
    assert warehouse.query("SELECT count() FROM rapport.sellers").result_rows[0][0] == 0
    assert delays[3] > delays[0]  # exponential backoff (jitter keeps it within a factor of two)
    switch.unlink()
    stats = await asyncio.wait_for(writing, timeout=30)
    assert stats.retries >= 4 and stats.rows == {"sellers": 1}
    assert warehouse.query("SELECT name FROM rapport.sellers FINAL").result_rows == [("Ann",)]


def scored(settings: Settings) -> int:
    return int((read_status(settings.status_file) or {}).get("counters", {}).get("events", 0))


@pytest.mark.broker
def test_live_pipeline_pauses_during_an_outage_and_loses_nothing(
    small_dataset: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = tmp_path / "outage"
    monkeypatch.setenv(OUTAGE_SWITCH_ENV, str(switch))  # the worker inherits the environment
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))  # tests.faults, from any cwd
    items = [item for item in read_dataset(small_dataset) if isinstance(item, SourceRecord)]
    half = len(items) // 2
    resolver = Resolver(settings.seller_domains)
    with Stack(settings, worker_command=FAULTY_WORKER) as stack:
        stack.start_workers()
        produce(stack.bootstrap, items[:half], resolver)
        deadline = time.monotonic() + 120
        while scored(settings) < half and time.monotonic() < deadline:
            stack.check_workers()
            time.sleep(0.2)
        assert scored(settings) >= half
        switch.touch()
        produce(stack.bootstrap, items[half:], resolver)
        time.sleep(2)  # let the score agent pick up a batch and start failing
        during = scored(settings)
        time.sleep(OUTAGE_S)
        assert scored(settings) == during  # no batch finished while the warehouse was down
        assert consumer_lag(stack.bootstrap, settings.app_id, (TOPIC_INTERACTIONS,)) > 0
        stack.check_workers()  # retrying, not crashed
        switch.unlink()
        status = stack.wait_drained(len(items), timeout_s=240)
    assert during < len(items) and status["counters"]["write_retries"] >= 3
    assert_same(snapshot(settings.warehouse_url), replay_snapshot(items, tmp_path / "replay", settings))
