"""Replay throughput: generated events → resolver → scoring core → chDB, no broker.

    python bench/replay.py [--accounts 100] [--json]

Prints events/s for the whole replay, for the pure core alone (resolve, then the shared loop
:func:`streams.runtime.loop.run` over in-memory ports: no warehouse, no broker) and for the I/O
floor, and the replay's CPU seconds (this process with chDB's threads, and replay's reader
process): on a shared machine wall time varies with other people's load, CPU time much less.

The **floor** is what replay cannot do without, in this process on the same input: read and
decode the dataset files, resolve each event to its interactions (there are no interaction rows
without identity resolution), build each interaction's warehouse row and insert the rows into a
fresh chDB folder in replay's batch size (then emptied for replay, which uses the same folder).
No scoring, no states, no other tables.
``replay_to_floor`` is replay's rate over the floor's. Replay runs as ``rapport replay`` does:
reading, decoding and resolving in a reader process while this one scores and writes
(:mod:`streams.runtime.replay_input`), so it uses a second core the floor does not.
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import orjson

from streams.config import Settings
from streams.identity.resolver import Resolver
from streams.records import Interaction
from streams.runtime.collector import relax_collector
from streams.runtime.replay import BATCH, replay
from streams.sinks.warehouse import Sink, connect, migrate
from streams.sources.dataset import Rejection, read_dataset, write_dataset
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import run_in_memory


def floor(folder: Path, settings: Settings) -> int:
    """Read, decode, resolve and insert the interaction rows of ``folder``; returns events read."""
    client = connect(settings.warehouse_url)
    migrate(client)
    sink = Sink(client, fail_on_full_disk=True)
    resolver = Resolver(settings.seller_domains)
    read, batch = 0, 0
    rows: list[Any] = []

    def insert() -> None:
        nonlocal batch
        sink.write_now({Interaction.TABLE: rows}, f"floor:{batch}")
        rows.clear()
        batch += 1

    for item in read_dataset(folder):
        read += 1
        if isinstance(item, Rejection):
            continue
        for resolved in resolver.resolve(item.envelope):
            if resolved.envelope.schema == "interaction/1":
                rows.append(msgspec.convert(resolved.envelope.payload, Interaction).row())
        if len(rows) >= BATCH:
            insert()
    if rows:
        insert()
    # the same folder serves replay next (one process opens one chDB folder): start it empty
    client.command(f"TRUNCATE TABLE rapport.{Interaction.TABLE}")
    return read


def cpu_seconds() -> float:
    """CPU time of this process and of its ended children (the reader process)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    relax_collector()  # as every `rapport` command does
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        events, labels = generate(args.accounts, seed=7)
        write_dataset(folder, events, labels)
        settings = Settings.from_env(
            {"RAPPORT_HOME": str(Path(tmp) / "home"), "RAPPORT_SELLER_DOMAINS": SELLER_DOMAIN}
        )

        resolver = Resolver(settings.seller_domains)
        started = time.perf_counter()
        records = [(o.account_id, o.envelope) for e in events for o in resolver.resolve(e)]
        # the shared loop over in-memory ports, in replay's step size, settled at the watermark
        run_in_memory(records, (settings.sink_batch_size,), settings.allowed_lateness_s, end=None)
        core_s = time.perf_counter() - started

        started = time.perf_counter()
        floor_read = floor(folder, settings)
        floor_s = time.perf_counter() - started

        started, cpu_started = time.perf_counter(), cpu_seconds()
        summary = replay(functools.partial(read_dataset, folder), settings)  # as `rapport replay`
        replay_s, replay_cpu_s = time.perf_counter() - started, cpu_seconds() - cpu_started
    figures = {
        "events": len(events),
        "core_events_per_s": round(len(events) / core_s),
        "replay_events_per_s": round(summary.read / replay_s),
        "floor_events_per_s": round(floor_read / floor_s),
        "replay_to_floor": round(summary.read / replay_s / (floor_read / floor_s), 2),
        "replay_seconds": round(replay_s, 2),
        "replay_cpu_seconds": round(replay_cpu_s, 2),
    }
    table = sys.stderr if args.json else sys.stdout  # --json: stdout is the JSON object alone
    for name, value in figures.items():
        print(f"{name:>22}: {value:,}", file=table)
    if args.json:
        print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
