"""Fault injection for tests: a warehouse client that fails its inserts on a switch, and a
consumer that drops fetched records the way faust does across a rebalance.

Production code has no fault switches. A fault test starts its worker with
:data:`FAULTY_WORKER` (``python -m tests.faults``, given to :class:`streams.runtime.stack.Stack`):
this module's ``__main__`` installs each fault whose variable is set, then runs
``rapport worker`` as usual: ``RAPPORT_FAULT_WAREHOUSE_OUTAGE_FILE`` wraps the real warehouse
client in :class:`SwitchedOutage`; ``RAPPORT_FAULT_DROP_FETCHED`` names a topic whose fetched
records the consumer drops (:func:`drop_fetched`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streams.sinks.warehouse import Client, WarehouseError

OUTAGE_SWITCH_ENV = "RAPPORT_FAULT_WAREHOUSE_OUTAGE_FILE"
DROP_FETCHED_ENV = "RAPPORT_FAULT_DROP_FETCHED"
REFETCH_AFTER_S = 3.0  # the faulty worker's UnreadFetches wait, shorter than the real 20 s
FAULTY_WORKER = (sys.executable, "-m", "tests.faults")  # a worker whose warehouse fails on the switch


class SwitchedOutage:
    """A client whose inserts fail while a switch file exists: injected warehouse outages.

    Fault tests point ``RAPPORT_FAULT_WAREHOUSE_OUTAGE_FILE`` at a path and create or remove that
    file to take the warehouse down or bring it back, across the worker's process boundary.
    Queries and commands pass through, so only writes see the outage.
    """

    def __init__(self, client: Client, switch: Path) -> None:
        self.client, self.switch = client, switch

    def command(self, cmd: str, parameters: Any = None, settings: Any = None) -> Any:
        return self.client.command(cmd, parameters=parameters, settings=settings)

    def query(self, query: str, parameters: Any = None, settings: Any = None) -> Any:
        return self.client.query(query, parameters=parameters, settings=settings)

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str] = "*",
        database: str = "",
        column_oriented: bool = False,
        settings: Any = None,
    ) -> Any:
        if self.switch.exists():
            raise WarehouseError(f"injected outage: inserts fail while {self.switch} exists")
        return self.client.insert(
            table, data, column_names=column_names, column_oriented=column_oriented, settings=settings
        )

    def close(self) -> None:
        getattr(self.client, "close", lambda: None)()


def switched_outage(client: Client) -> Client:
    """``client`` in a :class:`SwitchedOutage` on the file named by the fault-test variable."""
    return SwitchedOutage(client, Path(os.environ[OUTAGE_SWITCH_ENV]))


def open_switched_client(url: str) -> Client:
    from streams.sinks.warehouse import connect

    return switched_outage(connect(url))


def drop_fetched(topic: str) -> None:
    """The worker's consumer drops every record of ``topic`` it fetched, until a seek on it.

    What faust does to records fetched across a rebalance (``Consumer.getmany`` breaks off at a
    new generation): aiokafka's position has moved past them, faust's read offset has not, and
    only a seek fetches them again (:class:`streams.runtime.transport.UnreadFetches`).
    """
    import streams.runtime.transport as transport

    getmany, seek_wait = transport.Consumer.getmany, transport.Consumer.seek_wait
    dropping = [True]

    async def dropping_getmany(self: Any, timeout: float) -> Any:
        async for tp, message in getmany(self, timeout):
            if not (dropping[0] and tp.topic == topic):
                yield tp, message

    async def seek_wait_ends_the_drop(self: Any, partitions: Any) -> None:
        if any(tp.topic == topic for tp in partitions):
            dropping[0] = False
        await seek_wait(self, partitions)

    transport.Consumer.getmany = dropping_getmany  # type: ignore[method-assign]
    transport.Consumer.seek_wait = seek_wait_ends_the_drop  # type: ignore[method-assign]
    transport.REFETCH_AFTER_S = REFETCH_AFTER_S


if __name__ == "__main__":
    import streams.runtime.app
    from streams.cli import main

    if OUTAGE_SWITCH_ENV in os.environ:
        streams.runtime.app.open_warehouse_client = open_switched_client
    if DROP_FETCHED_ENV in os.environ:
        drop_fetched(os.environ[DROP_FETCHED_ENV])
    main(["worker"])
