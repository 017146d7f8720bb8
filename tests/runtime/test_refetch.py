"""Records fetched and dropped across a rebalance are read again (``UnreadFetches``).

The rules are checked on consumer reports; the recovery on a real worker whose consumer drops
every fetched ``raw`` record until a seek (:func:`tests.faults.drop_fetched`, the drop faust
makes when a generation changes while it passes a fetch on), on the embedded broker and chDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.config import TOPIC_RAW, Settings
from streams.identity.resolver import Resolver
from streams.runtime.stack import Stack
from streams.runtime.transport import UnreadFetches, refetch_offset
from streams.sources.dataset import SourceRecord, read_dataset
from tests.faults import DROP_FETCHED_ENV, FAULTY_WORKER
from tests.runtime.live_vs_replay import assert_same, produce, replay_snapshot, snapshot


def partition(position: int | None, read: int | None, committed: int | None, paused: bool = False) -> Any:
    return {"position": position, "read": read, "committed": committed, "paused": paused}


offsets = st.none() | st.integers(0, 1_000)


@given(position=offsets, read=offsets, committed=offsets, paused=st.booleans())
def test_the_seek_back_never_skips_an_offset_that_was_not_passed_on(
    position: int | None, read: int | None, committed: int | None, paused: bool
) -> None:
    offset = refetch_offset(partition(position, read, committed, paused))
    passed_on = read + 1 if read is not None else (committed or 0)
    if position is None or paused or position <= passed_on:
        assert offset is None  # nothing fetched past what faust passed on
    else:
        assert offset is not None and offset <= passed_on  # reads again from at or before the gap
        assert committed is None or offset <= committed  # never past the last commit
        assert read is None or offset <= read + 1


def test_a_dropped_fetch_is_due_once_it_stayed_the_same_for_the_wait() -> None:
    unread = UnreadFetches({"raw"}, after_s=20)
    stuck = {"raw[0]": partition(78, None, None), "raw[1]": partition(47, 46, 47)}
    assert unread.due(stuck, 100.0) == {}
    assert unread.due(stuck, 119.0) == {}
    assert unread.due(stuck, 120.0) == {"raw[0]": 0}  # raw[1] passed everything on
    assert unread.due(stuck, 121.0) == {}  # its clock starts again after the seek


def test_a_moving_paused_or_other_partition_is_never_due() -> None:
    unread = UnreadFetches({"raw"}, after_s=20)
    for second in range(0, 100, 5):
        report = {
            "raw[0]": partition(10 + second, None, None),  # moving: a fetch being passed on
            "raw[1]": partition(78, None, None, paused=True),
            "rapport-contact-directory-changelog[0]": partition(79, None, None),
        }
        assert unread.due(report, float(second)) == {}


@pytest.mark.broker
def test_a_worker_reads_again_what_its_consumer_dropped_and_loses_nothing(
    small_dataset: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DROP_FETCHED_ENV, TOPIC_RAW)  # the worker inherits the environment
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parents[2]))  # tests.faults, from any cwd
    items = [item for item in read_dataset(small_dataset) if isinstance(item, SourceRecord)]
    with Stack(settings, worker_command=FAULTY_WORKER) as stack:
        stack.start_workers()
        produce(stack.bootstrap, items, Resolver(settings.seller_domains))
        status = stack.wait_drained(len(items), timeout_s=240, stall_s=60)
    assert status["counters"]["refetched"] >= 1  # the drop happened and was undone by a seek
    assert_same(snapshot(settings.warehouse_url), replay_snapshot(items, tmp_path / "replay", settings))
