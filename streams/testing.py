"""In-memory ports for tests and benchmarks: a state store, a row sink, a publisher, a clock.

Like bytewax's ``testing.py`` and quix-streams' ``ListSink``: the same :func:`streams.runtime.loop.run`
as production, with everything kept in lists and dicts to assert on.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.contracts import Envelope
from streams.runtime.loop import Ports, Step, run
from streams.runtime.outbound import alert_envelope, health_envelope
from streams.runtime.ports import DictStore, Rows
from streams.scoring.engine import Scoring
from streams.scoring.profile import DEFAULT, Profile

MemoryStore = DictStore  # the in-memory state store


@dataclass
class MemoryWritten:
    rows: dict[str, int]
    retries: int = 0


@dataclass
class ListSink:
    """Keeps every written row, per table, in write order, and the origins it was given."""

    rows: Rows = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)

    async def write(self, rows: Rows, origin: str) -> MemoryWritten:
        self.origins.append(origin)
        for table, table_rows in rows.items():
            self.rows.setdefault(table, []).extend(table_rows)
        return MemoryWritten({t: len(r) for t, r in rows.items() if r})


@dataclass
class ListPublisher:
    """Keeps every published event."""

    scores: list[Envelope] = field(default_factory=list)
    alerts: list[Envelope] = field(default_factory=list)
    letters: list[Envelope] = field(default_factory=list)

    async def publish(
        self,
        health: list[dict[str, Any]],
        alerts: list[tuple[dict[str, Any], str | None]],
        letters: list[Envelope],
    ) -> None:
        self.scores.extend(health_envelope(row) for row in health)
        self.alerts.extend(alert_envelope(row, owner) for row, owner in alerts)
        self.letters.extend(letters)


@dataclass
class TestClock:
    """A clock that moves only when told."""

    __test__ = False  # not a pytest class
    at: float = 0.0

    def now(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


@dataclass
class MemoryPorts(Ports):
    """Ports over memory; ``sink.rows`` and ``publisher`` hold what the loop produced."""

    store: MemoryStore = field(default_factory=MemoryStore)
    sink: ListSink = field(default_factory=ListSink)
    publisher: ListPublisher = field(default_factory=ListPublisher)
    clock: TestClock = field(default_factory=TestClock)


def memory_ports(through_json: bool = False, now: float = 0.0) -> MemoryPorts:
    return MemoryPorts(MemoryStore(through_json), ListSink(), ListPublisher(), TestClock(now))


def run_in_memory(
    records: Sequence[tuple[str, Envelope]],
    sizes: Sequence[int] = (5000,),
    lateness_s: float = 86400.0,
    profile: Profile = DEFAULT,
    end: float | None = math.inf,
    ports: MemoryPorts | None = None,
) -> MemoryPorts:
    """``records`` through :func:`run` in steps of ``sizes`` (cycled), then the end of input
    settled at ``end`` (infinity: every window closes; None: the input's watermark, as replay
    without ``--as-of``). Returns the ports to assert on."""
    ports = ports or memory_ports()
    asyncio.run(run(chunks(records, sizes, end), Scoring(ports.store, lateness_s, profile), ports))
    return ports


def chunks(
    records: Sequence[tuple[str, Envelope]], sizes: Sequence[int], end: float | None
) -> Iterator[Step]:
    position, cycle = 0, itertools.cycle(max(1, n) for n in sizes)
    while position < len(records):
        size = next(cycle)
        yield Step(records[position : position + size], origin=f"memory:{position}")
        position += size
    yield Step(eof=True, now=end, origin="memory:eof")
