"""Garbage-collector thresholds for Rapport's processes (worker, replay, demo, every command).

Scoring allocates many short-lived dicts and lists per event and keeps few reference cycles.
With CPython's default thresholds (700, 10, 10) the cyclic collector ran every 700 allocations
and took about a fifth of the scoring core's time: resolve + score of the demo dataset in one
process went from 10,200–11,000 to 12,800–13,000 events/s with these thresholds (13,300 with the
collector off). Cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def relax_collector() -> None:
    gc.set_threshold(*THRESHOLDS)
