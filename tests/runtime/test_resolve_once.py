"""Ingestion resolves each event once: the tally and the routing key share the answer."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.contracts import Envelope
from streams.identity.resolver import Resolved, Resolver
from streams.runtime.producer import EventProducer
from streams.sources.dataset import SourceRecord
from streams.sources.reader import Tally
from streams.sources.synthetic import SELLER_DOMAIN, generate


class CountingResolver(Resolver):
    def __init__(self) -> None:
        super().__init__([SELLER_DOMAIN])
        self.calls = 0

    def resolve(self, envelope: Envelope) -> list[Resolved]:
        self.calls += 1
        return super().resolve(envelope)


class Recorded:
    """Stands in for the Kafka client only: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, value: bytes, key: bytes) -> Any:
        self.sent.append((topic, key))
        return self

    def add_errback(self, callback: Any) -> Any:  # kafka's future: never fails here
        return self


def test_each_record_is_resolved_once_for_tally_and_routing_key() -> None:
    events, _ = generate(3, seed=4, days=20)
    items = [SourceRecord(e.source, e, e.to_bytes()) for e in events]
    resolver = CountingResolver()
    producer = EventProducer.__new__(EventProducer)  # no broker: the Kafka client is replaced
    producer.resolver, producer.producer, producer.sent = resolver, Recorded(), Counter()
    producer.failed, producer.last_failure = 0, ""
    tally = Tally()
    producer.send_all([*items, items[0]], tally)  # one repeat: counted, not sent
    assert resolver.calls == len(items) + 1
    assert tally.read == len(items) + 1 and tally.duplicates == 1
    assert len(producer.producer.sent) == len(items)
    expected = Resolver([SELLER_DOMAIN])
    for item, (_, key) in zip(items, producer.producer.sent, strict=True):
        assert key.decode() == producer.routing_key(item, expected.resolve(item.envelope))
