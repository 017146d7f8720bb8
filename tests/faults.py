"""Fault injection for tests: a warehouse client that fails its inserts on a switch.

Production code has no fault switches. A worker process started by a test wraps its warehouse
client with :func:`switched_outage` when ``RAPPORT_WAREHOUSE_CLIENT_WRAPPER`` names it
(``tests.faults:switched_outage``, see :func:`streams.runtime.app.open_warehouse_client`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streams.sinks.warehouse import Client, WarehouseError

OUTAGE_SWITCH_ENV = "RAPPORT_FAULT_WAREHOUSE_OUTAGE_FILE"


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
