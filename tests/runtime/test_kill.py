"""Kill: SIGKILL the worker three times during a 50,000-event run; the warehouse still equals replay.

Offsets are committed only after a batch's rows are written and its states stored, so a killed
worker's restart redoes at most the uncommitted batches: the deduplication token drops repeated
inserts and the stored seen-ids drop repeated events.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.runtime.stack import Stack
from streams.runtime.status import read_status
from streams.sources.dataset import SourceRecord
from streams.sources.synthetic import generate
from tests.runtime.live_vs_replay import assert_same, produce, replay_snapshot, snapshot

pytestmark = pytest.mark.broker

KILLS = 3


def scored_so_far(settings: Settings) -> int:
    status = read_status(settings.status_file) or {}
    return int(status.get("counters", {}).get("events", 0))


def test_three_sigkills_lose_nothing_and_count_nothing_twice(settings: Settings, tmp_path: Path) -> None:
    # Short session timeouts: a killed member leaves the group (and a restart rejoins) sooner.
    settings = replace(settings, broker_session_timeout_s=3.0, broker_rebalance_timeout_s=3.0)
    events, _ = generate(120, seed=23, days=365)
    items = [SourceRecord(e.source, e, e.to_bytes()) for e in events]
    assert len(items) >= 50_000
    pids = []
    started = time.monotonic()
    with Stack(settings) as stack:
        stack.start_workers()
        sent = produce(stack.bootstrap, items, Resolver(settings.seller_domains))
        for _ in range(KILLS):
            # Kill mid-stream: after this incarnation has scored a few batches, well before the end.
            deadline = time.monotonic() + 120
            while scored_so_far(settings) < 2 * settings.sink_batch_size and time.monotonic() < deadline:
                stack.check_workers()
                time.sleep(0.2)
            pids.append(stack.workers[0].pid)
            stack.kill_worker(0)
            settings.status_file.unlink(missing_ok=True)  # the next incarnation starts its own
            stack.start_worker(0)
        # The last incarnation's counters cover only what it did: drained means no lag, no pending.
        stack.wait_drained(0, timeout_s=400)
        pids.append(stack.workers[0].pid)
    drained = time.monotonic()
    assert sent == len(items) and len(set(pids)) == KILLS + 1
    live = snapshot(settings.warehouse_url)
    replayed = replay_snapshot(items, tmp_path / "replay", settings)
    print(f"live run {drained - started:.0f}s, snapshots and replay {time.monotonic() - drained:.0f}s")
    assert_same(live, replayed)
