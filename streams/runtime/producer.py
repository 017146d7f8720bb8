"""Ingestion producer: valid envelopes to ``raw``, rejections to ``deadletter``.

kafka-python with ``acks=all`` and idempotence, so a retried send never duplicates on the
broker. Records were validated against their contracts when read (see
:mod:`streams.sources.dataset`); what failed arrives here as a :class:`Rejection`.

Each record is keyed by the account it routes to (the resolver's answer), so all of an
account's events share a partition and reach the scorer in the order they were produced.
What cannot be routed keeps its event id as key; ``resolve`` dead-letters it with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType

from kafka import KafkaProducer

from streams.config import TOPIC_DEADLETTER, TOPIC_RAW
from streams.contracts import ContractError
from streams.deadletters import dead_letter
from streams.identity.resolver import Resolved, Resolver
from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.reader import Tally

Placement = list[Resolved] | ContractError  # what resolving a record gave


class EventProducer:
    """Produces source records; counts what went where."""

    def __init__(self, bootstrap: str, resolver: Resolver) -> None:
        self.resolver = resolver
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="rapport-ingest",
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            batch_size=256 * 1024,
            max_request_size=2 * 1024 * 1024,
        )
        self.sent: Counter[str] = Counter()

    def send(self, item: SourceRecord | Rejection, placed: Placement | None = None) -> None:
        if isinstance(item, SourceRecord):
            key = self.routing_key(item, placed)
            self.producer.send(TOPIC_RAW, value=item.raw, key=key.encode())
            self.sent[item.source] += 1
        else:
            letter = dead_letter(item.origin, "ingest", item.reason, item.raw)
            self.producer.send(TOPIC_DEADLETTER, value=letter.to_bytes(), key=letter.event_id.encode())
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
        self.producer.flush(timeout=60)

    def close(self) -> None:
        self.producer.flush(timeout=60)
        self.producer.close(timeout=10)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
