"""Replay: history from files straight to the warehouse, without a broker.

The same resolver, the same scoring core and the same sink as the live agents, in one process,
so replay and live give the same rows for the same input.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from streams.config import TOPIC_INTERACTIONS, TOPIC_RAW, Settings
from streams.contracts import ContractError, Envelope
from streams.deadletters import dead_letter, rejected_row
from streams.identity.resolver import Resolver
from streams.scoring.profile import load_profile
from streams.scoring.scorer import flush_accounts, score_batch
from streams.sinks.warehouse import Client, Sink, WriteStats, connect, migrate
from streams.sources.dataset import Rejection, SourceRecord

BATCH = 20_000


@dataclass
class ReplaySummary:
    read: int = 0
    rejected: int = 0
    duplicates: int = 0
    rows: Counter[str] = field(default_factory=Counter)


def replay(
    items: Iterable[SourceRecord | Rejection],
    settings: Settings,
    client: Client | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Resolve, score and write every item; returns what was read and written."""
    client = client or connect(settings.warehouse_url)
    migrate(client)
    sink = Sink(client, fail_on_full_disk=True)
    resolver = Resolver(settings.seller_domains)
    profile = load_profile(settings.scoring_profile)
    states: dict[str, dict[str, Any]] = {}
    summary = ReplaySummary()
    batch: list[tuple[str, Envelope]] = []
    rejected: list[dict[str, Any]] = []
    digest = hashlib.sha256()
    # One writer thread: a batch's insert (chDB releases the GIL) overlaps scoring the next batch.
    # One thread keeps the writes in order (equal versions: the later insert wins), and waiting
    # for the previous write before handing over the next keeps at most two batches in memory.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-writer")
    writing: Future[WriteStats] | None = None

    def write(rows: dict[str, list[dict[str, Any]]], stage: str) -> None:
        nonlocal writing
        # The token must differ per write: an insert with a token seen before is dropped.
        origin = f"replay:{stage}:{digest.hexdigest()}"
        if writing is not None:
            summary.rows.update(writing.result().rows)
        writing = writer.submit(sink.write_now, rows, origin)

    def flush_batch() -> None:
        result = score_batch(batch, states, settings.allowed_lateness_s, profile)
        rows = result.rows
        rejected.extend(
            rejected_row(dead_letter(TOPIC_INTERACTIONS, "score", reason, env.to_bytes()))
            for env, reason in result.failed
        )
        if rejected:
            rows.setdefault("rejected_events", []).extend(rejected)
        write(rows, "batch")
        states.update({k: s.to_dict() for k, s in result.states.items()})
        summary.duplicates += result.duplicates
        if progress:
            progress(len(batch) + len(rejected))
        batch.clear()
        rejected.clear()

    try:
        for item in items:
            summary.read += 1
            digest.update(item.raw)
            if isinstance(item, Rejection):
                rejected.append(rejected_row(dead_letter(item.origin, "ingest", item.reason, item.raw)))
                summary.rejected += 1
            else:
                try:
                    batch.extend((r.account_id, r.envelope) for r in resolver.resolve(item.envelope))
                except ContractError as exc:
                    rejected.append(rejected_row(dead_letter(TOPIC_RAW, "resolve", str(exc), item.raw)))
                    summary.rejected += 1
            if len(batch) + len(rejected) >= BATCH:
                flush_batch()
        if batch or rejected:
            flush_batch()
        # Value windows still open at the end close if their end has passed on the clock, exactly
        # as the live worker's idle timer closes them.
        final = flush_accounts(list(states), states, profile, now=time.time())
        if final.rows:
            write(final.rows, "flush")
    finally:
        writer.shutdown(wait=True)
    if writing is not None:
        summary.rows.update(writing.result().rows)
    return summary
