"""Run the pipeline: broker (embedded unless configured) plus worker subprocesses.

Workers are separate processes (``python -m streams worker``) so they can be stopped, killed and
restarted like in production, and so each one owns its chDB folder lock. :class:`Stack` always
stops what it started, on success, on errors and on Ctrl-C; every child dies with the process
that started it, even on SIGKILL (:mod:`streams.runtime.children`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from kafka.admin import OffsetSpec
from kafka.structs import TopicPartition

from streams.config import TOPIC_DEADLETTER, TOPIC_INTERACTIONS, TOPIC_RAW, Settings
from streams.runtime import children
from streams.runtime.broker import BrokerError, EmbeddedBroker, admin, check_reachable, ensure_topics
from streams.runtime.status import read_status

log = logging.getLogger(__name__)

CONSUMED_TOPICS = (TOPIC_RAW, TOPIC_INTERACTIONS, TOPIC_DEADLETTER)
FULL_DISK_BYTES = 2 * 1024 * 1024  # below this, RocksDB, chDB and the broker's store start failing


class PipelineError(RuntimeError):
    """The pipeline did not finish; the message says what was seen and where the logs are."""


def group_positions(
    bootstrap: str, group: str, topics: tuple[str, ...] = CONSUMED_TOPICS
) -> dict[TopicPartition, tuple[int, int]]:
    """Per partition of ``topics``: (offset committed by ``group``, end offset)."""
    client = admin(bootstrap)
    try:
        described = client.describe_topics(list(topics))
        partitions = [
            TopicPartition(t["name"], p["partition_index"]) for t in described for p in t["partitions"]
        ]
        ends = client.list_partition_offsets(dict.fromkeys(partitions, OffsetSpec.LATEST))
        committed = client.list_group_offsets({group: None}).get(group, {})
        done = {tp: max(0, o.offset) for tp, o in committed.items()}
        return {tp: (done.get(tp, 0), ends[tp].offset) for tp in partitions}
    finally:
        client.close()


def lag_by_topic(bootstrap: str, group: str, topics: tuple[str, ...] = CONSUMED_TOPICS) -> dict[str, int]:
    """Per topic, the messages not yet committed by consumer group ``group``."""
    lag = dict.fromkeys(topics, 0)
    for tp, (done, end) in group_positions(bootstrap, group, topics).items():
        lag[tp.topic] += max(0, end - done)
    return lag


def consumer_lag(bootstrap: str, group: str, topics: tuple[str, ...] = CONSUMED_TOPICS) -> int:
    """Messages in ``topics`` not yet committed by consumer group ``group``."""
    return sum(lag_by_topic(bootstrap, group, topics).values())


class Stack:
    """Broker and workers for one run; a context manager."""

    def __init__(
        self,
        settings: Settings,
        workers: int = 1,
        fresh_state: bool | None = None,
        worker_command: Sequence[str] = (sys.executable, "-m", "streams", "worker"),
    ) -> None:
        self.settings = settings
        self.worker_command = list(worker_command)  # tests start a worker with a faulty client
        self.workers_wanted = workers
        self.broker: EmbeddedBroker | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.bootstrap = settings.kafka_bootstrap or ""
        # A memory broker keeps nothing between runs, so old local table state must go too; a
        # durable one keeps its changelogs, and the local tables continue from them.
        self.fresh_state = fresh_state

    @property
    def embedded(self) -> bool:
        return self.broker is not None

    def start_broker(self) -> str:
        if self.settings.kafka_bootstrap:
            check_reachable(self.settings.kafka_bootstrap)
        else:
            self.broker = EmbeddedBroker(self.settings)
            self.bootstrap = self.broker.start()
            if self.fresh_state is None:
                self.fresh_state = not self.broker.durable or self.broker.created_data
        ensure_topics(self.bootstrap, self.settings.partitions)
        return self.bootstrap

    def worker_log(self, index: int) -> Path:
        return self.settings.home / f"worker-{index}.log"

    def start_workers(self) -> None:
        if self.fresh_state:
            shutil.rmtree(self.settings.state_dir, ignore_errors=True)
        self.settings.status_file.unlink(missing_ok=True)
        for index in range(self.workers_wanted):
            self.start_worker(index)

    def start_worker(self, index: int) -> subprocess.Popen[bytes]:
        settings = replace(self.settings, kafka_bootstrap=self.bootstrap)
        env = {**os.environ, **settings.as_env(), "RAPPORT_WORKER_INDEX": str(index)}
        settings.home.mkdir(parents=True, exist_ok=True)
        with self.worker_log(index).open("ab") as log_file:
            process = children.spawn(settings.home, self.worker_command, log_file, env)
        if index < len(self.workers):
            self.workers[index] = process
        else:
            self.workers.append(process)
        return process

    def check_broker(self, say: Callable[[str], None]) -> None:
        """Restart an embedded broker that died, on its port, and the workers with it.

        The workers are restarted too: a faust worker caught mid group-join by the crash sometimes
        never got an assignment from the restarted broker (seen in test_live, about 1 run in 3).
        """
        if self.broker is not None and not self.broker.running():
            say(f"the embedded broker stopped unexpectedly (see {self.broker.log_path}); restarting it")
            self.stop_workers(timeout_s=10)
            self.broker.start(same_port=True)
            for index in range(len(self.workers)):
                self.start_worker(index)

    def check_disk(self) -> None:
        """A full disk under RAPPORT_HOME stops the run with one line (workers, broker and chDB
        all write there, and each fails in its own words, or silently)."""
        free = shutil.disk_usage(self.settings.home).free
        if free < FULL_DISK_BYTES:
            raise PipelineError(
                f"the disk of {self.settings.home} is full ({free // 1024} kB free); free space and "
                "run the same command again (what was produced is kept or produced again; writes "
                "are idempotent)"
            )

    def check_workers(self) -> None:
        for index, process in enumerate(self.workers):
            code = process.poll()
            if code is not None:
                self.check_disk()
                tail = self.worker_log(index).read_text(errors="replace").splitlines()[-15:]
                raise PipelineError(
                    f"worker {index} exited with code {code}; last lines of {self.worker_log(index)}:\n"
                    + "\n".join(tail)
                )

    def wait_drained(
        self,
        expected_events: int,
        timeout_s: float = 600.0,
        progress: Callable[[int, int], None] | None = None,
        stall_s: float = 90.0,
    ) -> dict[str, object]:
        """Wait until every message is committed and nothing is left pending in state.

        ``progress(done, expected)`` is called with the worker's scored-event count.
        """
        deadline = time.monotonic() + timeout_s
        calm = 0
        last_seen: tuple[object, ...] = ()
        moved = time.monotonic()
        while time.monotonic() < deadline:
            self.check_workers()
            self.check_disk()
            status = read_status(self.settings.status_file) or {}
            counters = status.get("counters", {})
            # every valid message is scored, dead-lettered or dropped as a copy by resolve
            done = sum(int(counters.get(name, 0)) for name in ("events", "resolve_rejected", "copies"))
            seen = (status.get("counters"), status.get("rows_written"), status.get("pending_events"))
            if seen != last_seen:
                last_seen, moved = seen, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise PipelineError(
                    f"no progress for {stall_s:.0f}s at {done:,} of {expected_events:,} events; "
                    f"{self.stall_report(status)}"
                )
            if progress:
                progress(done, expected_events)
            lag = consumer_lag(self.bootstrap, self.settings.app_id)
            pending = status.get("pending_events", -1)
            calm = calm + 1 if lag == 0 and pending == 0 and done >= expected_events else 0
            if calm >= 2:
                return status
            time.sleep(0.5)
        raise PipelineError(
            f"pipeline not drained after {timeout_s:.0f}s (lag or pending events remain); "
            f"see {', '.join(str(self.worker_log(i)) for i in range(len(self.workers)))}"
        )

    def stall_report(self, status: Mapping[str, object]) -> str:
        """What a stalled run left to read: the group's committed and end offsets, the worker's
        counters and consumer positions, the last lines of each worker's log (redacted, as every
        log of a worker)."""
        try:
            positions = group_positions(self.bootstrap, self.settings.app_id)
            lag = ", ".join(f"{tp.topic}[{tp.partition}] {c}/{e}" for tp, (c, e) in sorted(positions.items()))
        except Exception as exc:  # the broker itself may be what stalled
            lag = f"unknown ({exc})"
        lines = [
            f"committed/end offsets: {lag}",
            f"counters: {status.get('counters')}",
            f"the worker's consumer while idle: {status.get('consumer')}",
        ]
        for index in range(len(self.workers)):
            log_file = self.worker_log(index)
            tail = log_file.read_text(errors="replace").splitlines()[-20:] if log_file.exists() else []
            lines += [f"last lines of {log_file}:", *tail]
        return "\n".join(lines)

    def drain(self, timeout_s: float, say: Callable[[str], None]) -> bool:
        """Before a graceful stop: wait until the workers committed everything produced.

        Says the lag every few seconds; gives up after ``timeout_s`` (a durable broker keeps
        what is left for the next start). True when nothing was left.
        """
        deadline = time.monotonic() + timeout_s
        said = 0.0
        while True:
            try:
                lag = consumer_lag(self.bootstrap, self.settings.app_id)
                pending = int((read_status(self.settings.status_file) or {}).get("pending_events", 0))
            except Exception as exc:  # the broker went away: nothing more can drain
                say(f"cannot drain: {exc}")
                return False
            if lag == 0 and pending == 0:
                return True
            if time.monotonic() >= deadline:
                kept = "kept for the next start" if self.durable_broker else "lost (memory broker)"
                say(f"stopping with {lag:,} messages not processed ({kept})")
                return False
            if time.monotonic() - said >= 2:
                say(f"draining: {lag:,} messages to process (up to {deadline - time.monotonic():.0f}s more)")
                said = time.monotonic()
            self.check_workers()
            time.sleep(0.5)

    @property
    def durable_broker(self) -> bool:
        return self.broker is None or self.broker.durable

    def stop_workers(self, timeout_s: float = 20.0) -> None:
        for process in self.workers:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            children.stop(process, timeout_s=timeout_s)

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker (fault tests)."""
        process = self.workers[index]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        try:
            self.stop_workers()
        finally:
            if self.broker is not None:
                self.broker.stop()

    def __enter__(self) -> Stack:
        try:
            self.start_broker()
        except BrokerError:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
