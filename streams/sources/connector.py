"""What every live connector shares: a checkpoint, a status file and the run loop with backoff.

A connector (IMAP, CalDAV, CRM change stream) is a plain object with ``sync`` (read what is new
since its checkpoint, send it, flush, then save the checkpoint), ``wait`` (block until there may
be something new: IMAP IDLE, a poll interval) and ``close``. :func:`run_connector` drives it
until ``stop`` is set, reconnecting with exponential backoff on errors, and keeps
``$RAPPORT_HOME/connectors/<name>.json`` up to date for ``rapport status``.

Order that makes restarts safe: records are flushed to the broker (``acks=all``) *before* the
checkpoint moves. A crash in between re-sends the last batch on restart; the pipeline drops those
repeats by ``event_id`` (docs/design.md, "Semantics"). Nothing is checkpointed unsent, so nothing
is lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from streams.sources.dataset import Rejection, SourceRecord

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0


class ConnectorError(RuntimeError):
    """A connector cannot run as configured (bad credentials, no such folder); not retried."""


class Output(Protocol):
    """Where records go: :class:`streams.runtime.producer.EventProducer` (or a list in tests)."""

    def send(self, item: SourceRecord | Rejection) -> None: ...

    def flush(self) -> None: ...


class Connector(Protocol):
    name: str
    kind: str

    def sync(self, output: Output, status: ConnectorStatus) -> None: ...

    def wait(self, stop: threading.Event) -> None: ...

    def close(self) -> None: ...


def connectors_dir(home: Path) -> Path:
    return home / "connectors"


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


class Checkpoint:
    """``connectors/<name>.checkpoint.json``: where a connector got to, replaced atomically."""

    def __init__(self, home: Path, name: str) -> None:
        self.path = connectors_dir(home) / f"{name}.checkpoint.json"

    def load(self) -> dict[str, Any]:
        try:
            found = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError as exc:
            raise ConnectorError(
                f"{self.path}: unreadable checkpoint ({exc}); delete it to read the source again "
                "from the start (repeats are dropped by event id)"
            ) from None
        return found if isinstance(found, dict) else {}

    def save(self, state: dict[str, Any]) -> None:
        _write_json(self.path, state)


def _iso(moment: float | None) -> str | None:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds") if moment else None


class ConnectorStatus:
    """``connectors/<name>.json``, the state ``rapport status`` shows (fields: docs/connectors.md)."""

    def __init__(self, home: Path, name: str, kind: str) -> None:
        self.path = connectors_dir(home) / f"{name}.json"
        self.name, self.kind = name, kind
        self.state = "starting"
        self.started = time.time()
        self.last_sync: float | None = None
        self.last_event_at: str | None = None
        self.lag = 0
        self.produced: Counter[str] = Counter()
        self.errors = 0
        self.last_error: dict[str, Any] | None = None
        self.reconnects = 0
        self.detail: dict[str, Any] = {}

    def sent(self, item: SourceRecord | Rejection) -> None:
        if isinstance(item, SourceRecord):
            self.produced[item.source] += 1
            at = item.envelope.occurred_at
            self.last_event_at = max(self.last_event_at or at, at)
        else:
            self.produced["rejected"] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "pid": os.getpid(),
            "state": self.state,
            "started": _iso(self.started),
            "updated": _iso(time.time()),
            "last_sync": _iso(self.last_sync),
            "last_event_at": self.last_event_at,
            "lag": self.lag,
            "produced": dict(self.produced),
            "errors": self.errors,
            "last_error": self.last_error,
            "reconnects": self.reconnects,
            "detail": self.detail,
        }

    def write(self, state: str | None = None) -> None:
        if state:
            self.state = state
        _write_json(self.path, self.snapshot())

    def failed(self, exc: BaseException, retry_in: float | None) -> None:
        self.errors += 1
        self.last_error = {
            "at": _iso(time.time()),
            "message": f"{type(exc).__name__}: {str(exc)[:500]}",
            "retry_in_s": retry_in,
        }
        self.write("error" if retry_in is not None else "failed")


def read_connector_statuses(home: Path) -> list[dict[str, Any]]:
    """Every connector's status file under ``home`` (for ``rapport status``)."""
    found = []
    for path in sorted(connectors_dir(home).glob("*.json")):
        if path.name.endswith(".checkpoint.json"):
            continue
        try:
            found.append(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            continue
    return found


class Counted:
    """An output that also counts into the status what it was given."""

    def __init__(self, output: Output, status: ConnectorStatus) -> None:
        self.output, self.status = output, status

    def send(self, item: SourceRecord | Rejection) -> None:
        self.output.send(item)
        self.status.sent(item)

    def flush(self) -> None:
        self.output.flush()


def run_connector(
    connector: Connector, output: Output, status: ConnectorStatus, stop: threading.Event
) -> None:
    """Sync, wait, sync … until ``stop``; reconnect with backoff (1 s doubling to 5 min) on errors.

    A :class:`ConnectorError` (the configuration is wrong) stops the connector with its reason
    in the status file rather than retrying forever.
    """
    backoff = BACKOFF_FIRST_S
    counted = Counted(output, status)
    status.write("starting")
    try:
        while not stop.is_set():
            try:
                status.write("syncing")
                connector.sync(counted, status)
                status.last_sync = time.time()
                status.write("idle")
                backoff = BACKOFF_FIRST_S
                connector.wait(stop)
            except ConnectorError as exc:
                log.error("connector %s stopped: %s", connector.name, exc)
                status.failed(exc, None)
                raise
            except Exception as exc:  # network, server, protocol: reconnect later
                log.warning("connector %s: %s; retrying in %.0f s", connector.name, exc, backoff)
                status.failed(exc, backoff)
                connector.close()
                if stop.wait(backoff):
                    break
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                status.reconnects += 1
    finally:
        connector.close()
        if status.state != "failed":
            status.write("stopped")
