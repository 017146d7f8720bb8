"""Ingestion producer: valid envelopes to ``raw``, rejections to ``deadletter``.

kafka-python with ``acks=all`` and idempotence, so a retried send never duplicates on the
broker. Its record checksum (CRC-32C) comes from the ``crc32c`` package when installed, else from
pure Python, which was half of this producer's CPU (301 against 146 us per event, measured
2026-12-03); ``crc32c`` is a dependency and :func:`checksum_in_c` says whether it is in use.
Records were validated against their contracts when read (see
:mod:`streams.sources.dataset`); what failed arrives here as a :class:`Rejection`.

Each record is keyed by the account it routes to (the resolver's answer), so all of an
account's events share a partition and reach the scorer in the order they were produced.
What cannot be routed keeps its event id as key; ``resolve`` dead-letters it with the reason.

Every send's outcome is checked: a record the broker did not acknowledge (a batch that expired
after ``delivery_timeout_ms`` on an overloaded broker, a refused request) makes ``flush`` raise
with the count, never a silent loss. (Found by the poison test on a machine at load 4: 1,940 of
10,000 records of a producer that did not check were gone, and the pipeline stalled waiting.)
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType

from kafka import KafkaProducer

from streams.config import TOPIC_DEADLETTER, TOPIC_RAW
from streams.contracts import ContractError
from streams.identity.resolver import Resolved, Resolver
from streams.runtime.broker import BrokerError
from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.reader import Tally

Placement = list[Resolved] | ContractError  # what resolving a record gave


def checksum_in_c() -> bool:
    """Whether kafka-python computes record checksums with the ``crc32c`` C extension."""
    from kafka.record import util

    return util.crc32c_c is not None


class EventProducer:
    """Produces source records; counts what went where."""

    def __init__(self, bootstrap: str, resolver: Resolver, delivery_timeout_ms: int = 120_000) -> None:
        self.resolver = resolver
        self.producer = KafkaProducer(
            delivery_timeout_ms=delivery_timeout_ms,
            request_timeout_ms=min(30_000, delivery_timeout_ms // 2),
            bootstrap_servers=bootstrap,
            client_id="rapport-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            batch_size=256 * 1024,
            max_request_size=2 * 1024 * 1024,
        )
        self.sent: Counter[str] = Counter()
        self.failed = 0
        self.last_failure = ""

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_failure = f"{type(exc).__name__}: {exc}"

    def send(self, item: SourceRecord | Rejection, placed: Placement | None = None) -> None:
        if isinstance(item, SourceRecord):
            key = self.routing_key(item, placed)
            self.producer.send(TOPIC_RAW, value=item.raw, key=key.encode()).add_errback(self._failed)
            self.sent[item.source] += 1
        else:
            letter = item.letter()
            future = self.producer.send(
                TOPIC_DEADLETTER, value=letter.to_bytes(), key=letter.event_id.encode()
            )
            future.add_errback(self._failed)
            self.sent[TOPIC_DEADLETTER] += 1

    def place(self, item: SourceRecord) -> Placement:
        """The resolver's answer for one record: its canonical records, or why it fits nowhere."""
        try:
            return self.resolver.resolve(item.envelope)
        except ContractError as exc:
            return exc

    def routing_key(self, item: SourceRecord, placed: Placement | None = None) -> str:
        placed = self.place(item) if placed is None else placed
        return item.envelope.event_id if isinstance(placed, ContractError) else placed[0].account_id

    def send_all(
        self,
        items: Iterable[SourceRecord | Rejection],
        tally: Tally | None = None,
        progress: Callable[[], None] | None = None,
    ) -> None:
        """Send everything; with a tally, count each item and skip repeats of an event id.
        Each record is resolved once: the tally and the routing key share the answer."""
        for item in items:
            placed = self.place(item) if isinstance(item, SourceRecord) else None
            if tally is None or tally.note(item, self.resolver, placed) != "duplicate":
                self.send(item, placed)
            if progress:
                progress()

    def flush(self) -> None:
        """Wait for every acknowledgement (a batch expires after the producer's 120 s delivery
        timeout, so this returns); raise if any record was not acknowledged."""
        self.producer.flush(timeout=180)
        if self.failed:
            raise BrokerError(
                f"{self.failed:,} records were not acknowledged by the broker (last: {self.last_failure}); "
                "run the same command again once the broker keeps up: nothing is counted twice"
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.producer.close(timeout=10)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(BrokerError):  # the error that ended the block is the one to see
            self.close()
