"""The account states' changelog topic as a state store port, for writers outside a worker.

``forget`` stores its recomputed states here: the next worker rebuilds its RocksDB table from
the changelog. Each state goes to the partition the worker's table keeps its key on (Kafka's
default murmur2 partitioner on the key), with the value as the table stores it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from streams.runtime.stored_state import pack

STATE_CHANGELOG = "{app_id}-account-state-changelog"  # faust: <app id>-<table name>-changelog


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class ChangelogStore:
    """Write-only: ``put`` appends states to the changelog and waits until they are acknowledged."""

    def __init__(self, bootstrap: str, app_id: str, partitions: int) -> None:
        self.bootstrap, self.partitions = bootstrap, partitions
        self.topic = STATE_CHANGELOG.format(app_id=app_id)

    def get(self, key: str, /) -> dict[str, Any] | None:
        return None  # write-only: the worker reads the changelog, not this process

    def keys(self) -> Iterable[str]:
        return ()

    def put(self, states: Mapping[str, dict[str, Any] | None]) -> None:
        """Append each state; ``None`` appends a tombstone (the key is deleted on compaction)."""
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        try:
            for account_id, state in states.items():
                producer.send(
                    self.topic,
                    key=orjson.dumps(account_id),
                    value=None if state is None else pack(state),
                    partition=partition_of(account_id, self.partitions),
                )
            producer.flush(timeout=60)
        finally:
            producer.close(timeout=10)
