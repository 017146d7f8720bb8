"""The worker's progress, written to a small JSON file after every batch.

On chDB the worker process holds the warehouse folder exclusively, so other processes (the demo
waiting for completion, an operator) read progress from this file instead of the warehouse.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson


class WorkerStatus:
    """Counters of one worker process; :meth:`write` replaces the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counters: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.values: dict[str, Any] = {}
        self.started = time.time()

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def set(self, name: str, value: Any) -> None:
        self.values[name] = value

    def add_rows(self, rows: dict[str, int], retries: int) -> None:
        self.rows.update(rows)
        self.counters["write_retries"] += retries

    def snapshot(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started": self.started,
            "updated": time.time(),
            "counters": dict(self.counters),
            "rows_written": dict(self.rows),
            **self.values,
        }

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.snapshot()))
        tmp.replace(self.path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads(path.read_bytes())  # type: ignore[no-any-return]
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
