"""Read every message of every topic on a broker (privacy and forget tests scan them).

The tombstones a starting worker writes to refresh end offsets (``END_REFRESH_KEY``) are left
out: they carry nothing, and whether one is there depends on when the worker started."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.runtime.app import END_REFRESH_KEY

Messages = dict[str, list[tuple[bytes | None, bytes | None]]]


async def _read_all(bootstrap: str, only: set[str] | None) -> Messages:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = (await consumer.topics()) if only is None else only
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        read: Messages = {topic: [] for topic in topics}
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                read[tp.topic].extend(
                    (m.key, m.value) for m in messages if not (m.key == END_REFRESH_KEY and m.value is None)
                )
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return read
    finally:
        await consumer.stop()


def read_all(bootstrap: str, only: set[str] | None = None) -> Messages:
    """Every message, per topic, from the beginning to the current end (``only``: these topics)."""
    return asyncio.run(_read_all(bootstrap, only))
