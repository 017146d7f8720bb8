"""Where benchmark runs are kept: ``bench/results/<bench>-<UTC time>.json`` with the machine and
commit, so figures can be read together with the load they were measured under."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=BENCH, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit + ("+dirty" if dirty else ""),
    }


def record(
    bench: str, at: datetime, arguments: dict[str, Any], figures: dict[str, Any], before: dict[str, Any]
) -> Path:
    """Write one run (``before`` is :func:`machine` at its start; the load after is added)."""
    RESULTS.mkdir(exist_ok=True)
    facts = {**before, "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    document = {
        "at": at.isoformat(timespec="seconds"),
        "arguments": arguments,
        "figures": figures,
        "machine": facts,
    }
    path = RESULTS / f"{bench}-{at:%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path
