"""The ports the scoring loop (:mod:`streams.runtime.loop`) talks through.

Adapters: the faust app (a RocksDB table, the warehouse sink, the ``scores``/``alerts``/
``deadletter`` topics), replay and forget (a dict, the warehouse sink, nothing to publish), and
the in-memory ports of :mod:`streams.testing` for tests and benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import orjson

from streams.contracts import Envelope

Rows = dict[str, list[dict[str, Any]]]


class Clock(Protocol):
    """Wall time in epoch seconds; a port so tests can move it (streams.testing.TestClock)."""

    def now(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()


class StateStore(Protocol):
    """Account states as plain dicts: read one, store a step's, list every account."""

    def get(self, key: str, /) -> dict[str, Any] | None: ...

    def put(self, states: Mapping[str, dict[str, Any]]) -> None: ...

    def keys(self) -> Iterable[str]: ...


class DictStore(dict[str, dict[str, Any]]):
    """States in a dict (replay, forget). ``through_json`` stores what a JSON round trip gives
    back, as the RocksDB table does (tuples become lists, ...)."""

    def __init__(self, through_json: bool = False) -> None:
        super().__init__()
        self.through_json = through_json

    def put(self, states: Mapping[str, dict[str, Any]]) -> None:
        if self.through_json:
            self.update({k: orjson.loads(orjson.dumps(v)) for k, v in states.items()})
        else:
            self.update(states)


class Written(Protocol):
    """What a row sink reports: rows per table and how often it retried."""

    rows: dict[str, int]
    retries: int


class RowSink(Protocol):
    """Writes a step's rows; returns only once they landed (it retries itself).

    ``origin`` identifies the input (offsets and a digest): a rewrite with the same origin is
    dropped by the warehouse, so a replayed step writes nothing twice.
    """

    async def write(self, rows: Rows, origin: str) -> Written: ...


class Publisher(Protocol):
    """Events for downstream systems from a committed step: the latest health row per account,
    the alert rows with their account's owner, and the dead letters. Adapters turn rows into
    ``account_health/1`` and ``alert/1`` events (:mod:`streams.runtime.outbound`)."""

    async def publish(
        self,
        health: list[dict[str, Any]],
        alerts: list[tuple[dict[str, Any], str | None]],
        letters: list[Envelope],
    ) -> None: ...


class NoPublisher:
    """Replay and forget publish nothing: there is no broker on their path (and no event is
    built for nobody)."""

    async def publish(
        self,
        health: list[dict[str, Any]],
        alerts: list[tuple[dict[str, Any], str | None]],
        letters: list[Envelope],
    ) -> None:
        return None
