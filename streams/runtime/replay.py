"""Replay: history from files straight to the warehouse, without a broker.

The same resolver, the same scoring core and the same sink as the live agents, so replay and
live give the same rows for the same input. Given a reader (a picklable callable giving the
items) instead of the items, the input is read and resolved in a reader process, ahead of
scoring (:mod:`streams.runtime.replay_input`).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.runtime.loop import Ports, run
from streams.runtime.ports import DictStore, NoPublisher, Rows, SystemClock
from streams.runtime.replay_input import (
    BATCH,
    Items,
    Reader,
    ReplaySummary,
    read_ahead,
    replay_parts,
    replay_steps,
)
from streams.scoring.engine import Scoring
from streams.scoring.profile import load_profile
from streams.sinks.warehouse import TABLE_KEYS, Client, Sink, WriteStats, connect, migrate
from streams.sinks.written import WrittenKeys

__all__ = ["BATCH", "ReplaySummary", "replay"]


class BackgroundSink:
    """The warehouse sink on one writer thread: a step's insert (chDB releases the GIL) overlaps
    scoring the next step. One thread keeps the writes in order (equal versions: the later
    insert wins), and waiting for the previous write before handing over the next keeps at most
    two steps in memory. ``rows`` counts what landed."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.rows: Counter[str] = Counter()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-writer")
        self.writing: Future[WriteStats] | None = None

    async def write(self, rows: Rows, origin: str) -> WriteStats:
        self.wait()
        self.writing = self.writer.submit(self.sink.write_now, rows, origin)
        return WriteStats(rows={})  # counted in ``rows`` once it landed

    def wait(self) -> None:
        if self.writing is not None:
            self.rows.update(self.writing.result().rows)
            self.writing = None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.writer.shutdown(wait=True)


def replay(
    items: Items | Reader,
    settings: Settings,
    client: Client | None = None,
    progress: Callable[[int], None] | None = None,
    as_of: float | None = None,
) -> ReplaySummary:
    """Resolve, score and write every item; returns what was read and written. The end of input
    closes what the input's watermark closes, or every account's days through ``as_of``."""
    client = client or connect(settings.warehouse_url)
    migrate(client)
    written = WrittenKeys(settings.written_dir, f"replay-{os.getpid()}", TABLE_KEYS)
    sink = BackgroundSink(Sink(client, fail_on_full_disk=True, written=written))
    ports = Ports(DictStore(), sink, NoPublisher(), SystemClock())
    summary = ReplaySummary()
    if callable(items):  # a reader: read and resolved in a reader process, ahead of scoring
        parts = read_ahead(items, settings.seller_domains, summary, as_of)
    else:
        parts = replay_parts(items, Resolver(settings.seller_domains), summary, as_of)
    steps = replay_steps(parts, progress)
    scoring = Scoring(ports.store, settings.allowed_lateness_s, load_profile(settings.scoring_profile))
    try:
        totals = asyncio.run(run(steps, scoring, ports))
    finally:
        parts.close()  # a reader process stops with it
        sink.close()
        written.flush()
    summary.duplicates = totals.duplicates + summary.copies
    summary.rows = sink.rows
    return summary
