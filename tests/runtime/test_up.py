"""`rapport up` runs broker and worker until interrupted and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams.config import Settings
from streams.runtime.status import read_status

pytestmark = pytest.mark.broker


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    return [int(p) for p, parent in rows if int(parent) == pid]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_ingest_and_stops_cleanly(
    settings: Settings, small_dataset: Path, stop_signal: signal.Signals
) -> None:
    env = {**os.environ, **settings.as_env()}
    env.pop("RAPPORT_KAFKA_BOOTSTRAP", None)
    up = subprocess.Popen(
        [sys.executable, "-m", "streams", "up"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not settings.bootstrap_file.exists():
            assert up.poll() is None, up.stderr.read().decode() if up.stderr else ""
            assert time.monotonic() < deadline, "rapport up never wrote its bootstrap file"
            time.sleep(0.2)
        started = children_of(up.pid)
        assert len(started) == 2  # the broker and one worker

        ingest = subprocess.run(
            [sys.executable, "-m", "streams", "ingest", "dataset", str(small_dataset), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ingest.returncode == 0, ingest.stderr
        assert "one-shot" not in ingest.stderr  # it found the running broker and only produced
        assert "running workers" not in ingest.stderr  # same seller domains on both sides
        summary = orjson.loads(ingest.stdout.strip().splitlines()[-1])
        assert summary["read"] == sum(
            1 for line in (small_dataset / "email.jsonl").open() if line.strip()
        ) + sum(
            1
            for name in ("meeting.jsonl", "crm.jsonl")
            for line in (small_dataset / name).open()
            if line.strip()
        )

        deadline = time.monotonic() + 90
        while (read_status(settings.status_file) or {}).get("counters", {}).get("events", 0) < summary[
            "read"
        ]:
            assert time.monotonic() < deadline, read_status(settings.status_file)
            time.sleep(0.5)
        other = subprocess.run(
            [
                sys.executable,
                "-m",
                "streams",
                "ingest",
                "dataset",
                str(small_dataset),
                "--seller-domain",
                "other.com",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 0 and "running workers" in other.stderr  # a mismatch is said
        # and the summary counts what the workers will do, with their seller domains
        assert orjson.loads(other.stdout.strip().splitlines()[-1])["accepted"] == summary["accepted"]
    finally:
        os.kill(up.pid, stop_signal)
        up.wait(timeout=60)
    assert not settings.bootstrap_file.exists() and not settings.seller_domains_file.exists()
    time.sleep(0.5)
    assert [pid for pid in started if alive(pid)] == []
