"""Produce and drain throughput of the embedded broker: durable storage vs memory.

    python bench/broker.py [--records 20000] [--size 300] [--json]

For each storage (``RAPPORT_BROKER_STORAGE`` durable, then memory) a fresh embedded Tansu
(:class:`streams.runtime.broker.EmbeddedBroker`, a temporary RAPPORT_HOME) gets one 4-partition
topic; kafka-python produces ``--records`` records of ``--size`` bytes (acks=all, linger 20 ms,
as ingestion does), then aiokafka reads them all back from the start without a group (the
fastest consumer here). Rates are records/s over the wall time of each phase. The durable
broker is then restarted on its data and the records are drained again: that they are all
there is the point of the durable mode.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from record import machine, record

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.config import Settings
from streams.runtime.broker import EmbeddedBroker, ensure_topics

TOPIC = "bench"


def produce(bootstrap: str, records: int, size: int) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    value = b"x" * size
    started = time.perf_counter()
    for i in range(records):
        producer.send(TOPIC, key=str(i % 97).encode(), value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def drain(bootstrap: str, records: int) -> tuple[int, float]:
    from aiokafka import AIOKafkaConsumer

    async def run() -> tuple[int, float]:
        consumer = AIOKafkaConsumer(
            TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        seen, started = 0, time.perf_counter()
        try:
            while seen < records:
                batch = await consumer.getmany(timeout_ms=5000)
                if not batch:
                    break
                seen += sum(len(v) for v in batch.values())
        finally:
            await consumer.stop()
        return seen, time.perf_counter() - started

    return asyncio.run(run())


def measure(storage: str, records: int, size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-broker-{storage}-") as home:
        settings = Settings.from_env({"RAPPORT_HOME": home, "RAPPORT_BROKER_STORAGE": storage})
        broker = EmbeddedBroker(settings)
        try:
            bootstrap = broker.start()
            ensure_topics(bootstrap, 4, (TOPIC,))
            produced_s = produce(bootstrap, records, size)
            drained, drained_s = drain(bootstrap, records)
            figures: dict[str, Any] = {
                "produce_per_s": round(records / produced_s),
                "drain_per_s": round(drained / drained_s),
                "drained": drained,
            }
            if storage == "durable":
                broker.stop()
                bootstrap = broker.start()
                figures["after_restart"] = drain(bootstrap, records)[0]
            return figures
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    at, before = datetime.now(UTC), machine()
    figures = {storage: measure(storage, args.records, args.size) for storage in ("durable", "memory")}
    record("broker", at, vars(args), figures, before)
    if args.json:
        print(orjson.dumps(figures).decode())
        return
    for storage, row in figures.items():
        print(f"{storage:8} " + "  ".join(f"{k} {v:,}" for k, v in row.items()))


if __name__ == "__main__":
    main()
