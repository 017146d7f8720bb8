"""Duplicates and order on the live path: every event delivered twice, shuffled within the
allowed lateness, gives the warehouse that ``replay`` makes from the clean, ordered input.

tests/test_end_to_end.py sends everything twice in order and tests/scoring checks the core's
order independence; this test puts both through the broker and worker together.

The CRM's account and contact records go first, as a CRM snapshot does in practice: the resolver
places mail by the CRM directory as it stands when the mail arrives (by event time, whatever the
order of the records it has seen), and a mail resolved before its contact record arrived keeps
its domain match (docs/design.md, "Identity and arrival order").
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streams.config import Settings
from streams.contracts import parse_time
from streams.identity.resolver import Resolver
from streams.runtime.stack import Stack
from streams.sources.dataset import SourceRecord, read_dataset
from tests.runtime.live_vs_replay import assert_same, produce, replay_snapshot, snapshot

pytestmark = pytest.mark.broker


def twice_shuffled(items: list[SourceRecord], lateness_s: float, seed: int) -> list[SourceRecord]:
    """Each item twice, each copy moved by up to 0.9 × the lateness in event time.

    Sorting by event time plus a random delay below L means any event arrives before events more
    than L later than it, so nothing is ever behind the watermark by more than L.
    """
    rng = random.Random(seed)
    copies = [
        (parse_time(item.envelope.occurred_at).timestamp() + rng.uniform(0, 0.9 * lateness_s), n, item)
        for n, item in enumerate(items + items)
    ]
    return [item for _, _, item in sorted(copies, key=lambda c: (c[0], c[1]))]


def test_every_event_twice_and_shuffled_within_lateness_matches_replay(
    small_dataset: Path, settings: Settings, tmp_path: Path
) -> None:
    items = [item for item in read_dataset(small_dataset) if isinstance(item, SourceRecord)]
    directory = ("crm_account/1", "crm_contact/1")
    reference = [item for item in items if item.envelope.schema in directory]
    rest = [item for item in items if item.envelope.schema not in directory]
    assert reference and rest
    delivered = reference + twice_shuffled(rest, settings.allowed_lateness_s, seed=3)
    shuffled = delivered[len(reference) :]
    moved = sum(1 for a, b in zip(shuffled[::2], shuffled[1::2], strict=False) if a is not b)
    assert moved > len(rest) // 2  # the copies really are apart, not pairs side by side
    assert sorted(map(id, delivered)) != list(map(id, delivered))
    with Stack(settings) as stack:
        stack.start_workers()
        produce(stack.bootstrap, delivered, Resolver(settings.seller_domains))
        status = stack.wait_drained(len(delivered), timeout_s=240)
    assert status["counters"]["duplicates"] >= len(rest) - 10  # the second copies
    assert status["counters"].get("late", 0) == 0
    assert_same(snapshot(settings.warehouse_url), replay_snapshot(items, tmp_path / "replay", settings))
