"""Fault injection for tests: a warehouse client that fails its inserts on a switch.

Production code has no fault switches. A fault test starts its worker with
:data:`FAULTY_WORKER` (``python -m tests.faults``, given to :class:`streams.runtime.stack.Stack`):
this module's ``__main__`` replaces :func:`streams.runtime.app.open_warehouse_client` with one that
wraps the real client in :class:`SwitchedOutage`, then runs ``rapport worker`` as usual.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streams.sinks.warehouse import Client, WarehouseError

OUTAGE_SWITCH_ENV = "RAPPORT_FAULT_WAREHOUSE_OUTAGE_FILE"
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


if __name__ == "__main__":
    import streams.runtime.app
    from streams.cli import main

    streams.runtime.app.open_warehouse_client = open_switched_client
    main(["worker"])
