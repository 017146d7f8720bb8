"""The notifier's delivery ledger: a durable queue of deliveries and what became of each.

One append-only JSON-lines file (``$RAPPORT_HOME/notify/ledger.jsonl``), each line fsync'ed
before the notifier goes on, replayed at start:

* ``queued`` — an alert version matched a route (key ``route|alert_id|version``), with the alert;
  written *before* the alerts topic's offsets move past it (``offsets`` lines), so an alert
  waiting for quiet hours to end or for the next digest survives a restart;
* ``sending`` then ``sent`` — around each webhook post;
* ``digest`` then ``digest_sent`` — around each email digest, with the keys it lists.

Why this order: a kill before ``sending`` only delays; a kill between ``sending`` and ``sent``
leaves the delivery *uncertain*, and the restarted notifier sends it again. Losing an alert is
worse than a rare repeat, and the window is the time between the receiver's answer and one
fsync (well under a millisecond here), not the network round trip. A re-sent digest keeps its
``Message-ID``, so mail systems that collapse repeats by Message-ID show it once. A kill never
loses a delivery: everything consumed is queued first.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass
class LedgerState:
    queued: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {route, alert, at}
    sent: set[str] = field(default_factory=set)
    digests: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {to, keys, done}
    last_digest: dict[str, float] = field(default_factory=dict)  # recipient -> time sent
    offsets: dict[str, int] = field(default_factory=dict)

    def in_digest(self) -> set[str]:
        return {key for digest in self.digests.values() for key in digest["keys"]}


class DeliveryLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.state = LedgerState()
        self._replay()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("ab")

    def _replay(self) -> None:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line torn by a kill mid-write: its step is redone
            self._apply(entry)

    def _apply(self, entry: dict[str, Any]) -> None:
        s, op = self.state, entry["op"]
        if op == "queued":
            s.queued.setdefault(entry["key"], {"route": entry["route"], "alert": entry["alert"]})
        elif op == "sent":
            s.sent.add(entry["key"])
        elif op == "offsets":
            s.offsets.update(entry["offsets"])
        elif op == "digest":
            s.digests[entry["id"]] = {"to": entry["to"], "keys": entry["keys"], "done": False}
        elif op == "digest_sent":
            digest = s.digests.get(entry["id"])
            if digest is not None:
                digest["done"] = True
                s.last_digest[digest["to"]] = entry["at"]
                s.sent.update(digest["keys"])

    def write(self, op: str, **fields: Any) -> None:
        entry = {"op": op, "at": time.time(), **fields}
        self._file.write(orjson.dumps(entry) + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._apply(entry)

    def close(self) -> None:
        self._file.close()
