"""Replay: history from files straight to the warehouse, without a broker.

The same resolver, the same scoring core and the same sink as the live agents, in one process,
so replay and live give the same rows for the same input.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from streams.config import TOPIC_RAW, Settings
from streams.contracts import ContractError, Envelope
from streams.deadletters import dead_letter
from streams.identity.fingerprint import Copies
from streams.identity.resolver import Resolver
from streams.runtime.loop import Ports, Step, run
from streams.runtime.ports import DictStore, NoPublisher, Rows, SystemClock
from streams.scoring.engine import Scoring
from streams.scoring.profile import load_profile
from streams.sinks.warehouse import TABLE_KEYS, Client, Sink, WriteStats, connect, migrate
from streams.sinks.written import WrittenKeys
from streams.sources.dataset import Rejection, SourceRecord

BATCH = 20_000


@dataclass
class ReplaySummary:
    read: int = 0
    rejected: int = 0
    duplicates: int = 0
    copies: int = 0  # copies under a new Message-ID (content fingerprint), dropped before scoring
    rows: Counter[str] = field(default_factory=Counter)


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
    items: Iterable[SourceRecord | Rejection],
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
    steps = replay_steps(items, Resolver(settings.seller_domains), summary, progress, as_of)
    scoring = Scoring(ports.store, settings.allowed_lateness_s, load_profile(settings.scoring_profile))
    try:
        totals = asyncio.run(run(steps, scoring, ports))
    finally:
        sink.close()
        written.flush()
    summary.duplicates = totals.duplicates + summary.copies
    summary.rows = sink.rows
    return summary


def replay_steps(
    items: Iterable[SourceRecord | Rejection],
    resolver: Resolver,
    summary: ReplaySummary,
    progress: Callable[[int], None] | None = None,
    as_of: float | None = None,
) -> Iterator[Step]:
    """The items cut into steps of ``BATCH``, then the end of input: pending events settle and
    the days and value windows the input's watermark (or ``as_of``) passed close, as a drained
    live worker's idle tick closes them."""
    records: list[tuple[str, Envelope]] = []
    letters: list[Envelope] = []
    digest = hashlib.sha256()
    copies = Copies()  # the same mechanism as ``rapport ingest``'s Tally and the live resolve agent

    def step() -> Step:
        # The token must differ per write: an insert with a token seen before is dropped.
        count = len(records) + len(letters)
        done = (lambda _: progress(count)) if progress else None
        return Step(list(records), list(letters), origin=f"replay:batch:{digest.hexdigest()}", done=done)

    for item in items:
        summary.read += 1
        digest.update(item.raw)
        if isinstance(item, Rejection):
            letters.append(item.letter())
            summary.rejected += 1
        else:
            try:
                resolved = resolver.resolve(item.envelope)
            except ContractError as exc:  # a dead letter, not remembered as an original
                letters.append(dead_letter(TOPIC_RAW, "resolve", str(exc), item.raw))
                summary.rejected += 1
            else:
                if copies.original_of(item.envelope):
                    summary.copies += 1
                else:
                    records.extend((r.account_id, r.envelope) for r in resolved)
        if len(records) + len(letters) >= BATCH:
            yield step()
            records.clear()
            letters.clear()
    if records or letters:
        yield step()
    yield Step(eof=True, now=as_of, origin=f"replay:flush:{digest.hexdigest()}")
