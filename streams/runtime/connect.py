"""Running connectors: from their TOML tables to threads producing through one EventProducer.

A connectors file holds one connector table at its top level (``kind = "imap"`` …) or a list
of them as ``[[connectors]]``; the same tables may sit in any config file's ``connectors``
section. ``rapport connect`` runs one connector in the foreground; ``rapport up --connect FILE``
runs every connector of the file beside the workers, each in its own thread (I/O-bound: a thread
per mailbox or calendar is enough, and a failing connector never stops the pipeline).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.config import ConfigError, Settings
from streams.identity.resolver import Resolver
from streams.runtime.producer import EventProducer
from streams.sources.connector import Connector, ConnectorError, ConnectorStatus, run_connector

log = logging.getLogger(__name__)

KINDS = ("imap", "caldav", "crm-stream")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def load_connector_configs(path: Path) -> list[dict[str, Any]]:
    """The connector tables of one TOML file, each with a ``kind`` and a unique ``name``."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the connectors file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    tables = document.get("connectors", [document] if "kind" in document else [])
    if isinstance(tables, dict):  # [connectors.<name>] tables
        tables = [{"name": name, **table} for name, table in tables.items()]
    if not tables:
        raise ConfigError(f"{path}: no connector: expected kind = ... at the top, or [[connectors]] tables")
    configs = []
    for n, table in enumerate(tables):
        if not isinstance(table, dict) or table.get("kind") not in KINDS:
            raise ConfigError(f"{path}: connector {n + 1}: kind must be one of {', '.join(KINDS)}")
        name = str(table.get("name") or default_name(table))
        if not _NAME.match(name):
            raise ConfigError(f"{path}: connector name {name!r}: use letters, digits, '.', '_', '-'")
        configs.append({**table, "name": name})
    names = [c["name"] for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: connector names repeat ({', '.join(names)}); give each a name")
    return configs


def default_name(config: dict[str, Any]) -> str:
    """A stable name (checkpoint and status file) from what the connector reads."""
    where = config.get("user") or config.get("url") or config.get("topic") or "default"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{config['kind']}-{where}").strip("-")[:64]


def build_connector(config: dict[str, Any], settings: Settings, bootstrap: str) -> Connector:
    kind, name = config["kind"], config["name"]
    if kind == "imap":
        from streams.sources.imap import ImapConnector, imap_settings

        return ImapConnector(name, imap_settings(config), settings.home)
    if kind == "caldav":
        from streams.sources.caldav_feed import CalDavConnector, caldav_settings

        return CalDavConnector(name, caldav_settings(config), settings.home)
    from streams.sources.crm_stream import CrmStreamConnector, crm_stream_settings

    return CrmStreamConnector(name, crm_stream_settings(config, bootstrap), settings.home)


@dataclass
class RunningConnectors:
    """Connector threads beside ``up``'s workers; :meth:`stop` ends them and waits."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    producers: list[EventProducer] = field(default_factory=list)

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout_s)
        for producer in self.producers:
            producer.close()


def run_one(config: dict[str, Any], settings: Settings, bootstrap: str, stop: threading.Event) -> None:
    """Run one connector until ``stop``; a wrong configuration raises :class:`ConnectorError`."""
    connector = build_connector(config, settings, bootstrap)
    status = ConnectorStatus(settings.home, connector.name, connector.kind)
    with EventProducer(bootstrap, Resolver(settings.seller_domains)) as producer:
        run_connector(connector, producer, status, stop)


def start_connectors(
    configs: Iterable[dict[str, Any]], settings: Settings, bootstrap: str
) -> RunningConnectors:
    """Start each connector in a daemon thread; errors land in its status file, not in ``up``."""
    running = RunningConnectors()
    for config in configs:
        connector = build_connector(config, settings, bootstrap)  # wrong settings fail here, at start
        status = ConnectorStatus(settings.home, connector.name, connector.kind)
        producer = EventProducer(bootstrap, Resolver(settings.seller_domains))
        running.producers.append(producer)

        def body(c: Connector = connector, s: ConnectorStatus = status, p: EventProducer = producer) -> None:
            with contextlib.suppress(ConnectorError):  # its reason is in the status file
                run_connector(c, p, s, running.stop_event)

        thread = threading.Thread(target=body, name=f"connector-{connector.name}", daemon=True)
        thread.start()
        running.threads.append(thread)
    return running


@dataclass
class Alongside:
    """What ``up --connect/--notify`` runs beside the workers."""

    connectors: RunningConnectors
    notifier: threading.Thread | None = None

    def stop(self) -> None:
        self.connectors.stop()
        if self.notifier is not None:
            self.notifier.join(30)


def start_alongside(
    connect_files: Iterable[Path], notify_file: Path | None, settings: Settings, bootstrap: str
) -> Alongside:
    """Start the connectors of ``connect_files`` and the notifier of ``notify_file`` in threads."""
    configs = [config for path in connect_files for config in load_connector_configs(path)]
    names = [c["name"] for c in configs]
    if len(set(names)) != len(names):
        raise ConfigError(f"connector names repeat across files ({', '.join(names)}); name each one")
    try:
        running = Alongside(start_connectors(configs, settings, bootstrap))
    except ConnectorError as exc:
        raise ConfigError(str(exc)) from None
    if notify_file is not None:
        from streams.sinks.notify import load_notify_config, run_notifier

        config = load_notify_config(notify_file)
        running.notifier = threading.Thread(
            target=run_notifier,
            args=(config, settings.home, bootstrap, running.connectors.stop_event),
            name="notifier",
            daemon=True,
        )
        running.notifier.start()
    return running
