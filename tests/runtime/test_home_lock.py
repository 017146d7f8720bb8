"""One owner per RAPPORT_HOME, children that die with their parent, and plain fast failures."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.runtime.children import alive, recorded
from streams.runtime.home_lock import HomeLocked, holder, home_lock
from streams.runtime.replay import replay
from streams.sinks.warehouse import DiskFull, connect
from streams.sources.dataset import read_dataset

HOLD = """
import sys, time
from collections.abc import Iterator
from pathlib import Path
from streams.runtime.home_lock import home_lock
with home_lock(Path(sys.argv[1]), "rapport up"):
    print("held", flush=True)
    time.sleep(60)
"""


def rapport(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_second_command_names_the_holder_and_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder_process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder_process.stdout is not None and holder_process.stdout.readline() == "held\n"
        info = holder(home)
        assert info is not None and info["pid"] == holder_process.pid
        locked = rf"in use by `rapport up` \(pid {holder_process.pid}, since"
        with pytest.raises(HomeLocked, match=locked), home_lock(home, "rapport replay"):
            pass
        env = {**os.environ, "RAPPORT_HOME": str(home)}
        second = rapport(env, "replay", str(tmp_path))
        assert second.returncode == 2
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert "in use by `rapport up`" in second.stderr and "Traceback" not in second.stderr
        assert len(lines) <= 3  # one message (rich may wrap it)
    finally:
        holder_process.kill()  # SIGKILL: the lock file stays behind, naming a dead pid
        holder_process.wait()
    notices: list[str] = []
    with home_lock(home, "rapport replay", notice=notices.append):
        assert holder(home) is not None and holder(home)["command"] == "rapport replay"  # type: ignore[index]
    assert len(notices) == 1 and "stale lock" in notices[0] and str(holder_process.pid) in notices[0]
    assert holder(home) is None


def test_unreachable_broker_fails_in_seconds_with_one_line(tmp_path: Path, small_dataset: Path) -> None:
    env = {**os.environ, "RAPPORT_HOME": str(tmp_path / "home"), "RAPPORT_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    started = time.monotonic()
    result = rapport(env, "ingest", "dataset", str(small_dataset))
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    assert "RAPPORT_KAFKA_BOOTSTRAP=127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 3


def test_unreachable_warehouse_fails_in_seconds_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RAPPORT_HOME": str(tmp_path / "home"),
        "RAPPORT_WAREHOUSE_URL": "http://127.0.0.1:1",
    }
    started = time.monotonic()
    result = rapport(env, "accounts")
    assert time.monotonic() - started < 10
    assert result.returncode == 2, result.stderr
    assert "RAPPORT_WAREHOUSE_URL" in result.stderr and "Traceback" not in result.stderr


def test_nothing_readable_is_said_before_any_broker_starts(tmp_path: Path) -> None:
    empty, junk = tmp_path / "empty", tmp_path / "junk"
    empty.mkdir()
    junk.mkdir()
    (junk / "notes.txt").write_bytes(b"\x00\x01 not a mail at all")
    env = {**os.environ, "RAPPORT_HOME": str(tmp_path / "home")}
    for folder in (empty, junk):
        started = time.monotonic()
        result = rapport(env, "ingest", "email", str(folder))
        assert result.returncode == 1, result.stderr
        assert f"0 messages found in {folder}" in result.stderr
        assert time.monotonic() - started < 10
    assert not (tmp_path / "home" / "broker.log").exists()  # no broker was started


class FullDisk:
    """A warehouse client whose inserts fail as a full disk does (test code only)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def command(self, cmd: str, parameters: Any = None, settings: Any = None) -> Any:
        return self.client.command(cmd, parameters=parameters, settings=settings)

    def query(self, query: str, parameters: Any = None, settings: Any = None) -> Any:
        return self.client.query(query, parameters=parameters, settings=settings)

    def insert(self, table: str, *args: Any, **kwargs: Any) -> Any:
        if table.endswith("schema_migrations"):  # the warehouse was migrated before the disk filled
            return self.client.insert(table, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self.client.close()


def test_full_disk_stops_replay_at_once_with_nothing_written(settings: Settings, small_dataset: Path) -> None:
    client = connect(settings.warehouse_url)
    try:
        started = time.monotonic()
        with pytest.raises(DiskFull, match="disk is full"):
            replay(read_dataset(small_dataset), settings, client=FullDisk(client))  # type: ignore[arg-type]
        assert time.monotonic() - started < 10  # no retrying forever
        assert client.query("SELECT count() FROM rapport.interactions").result_rows[0][0] == 0
    finally:
        client.close()


CHILD = """
import signal, sys, time
from collections.abc import Iterator
from pathlib import Path
from streams.runtime import children
home = Path(sys.argv[1])
for _ in range(2):
    children.spawn(home, [sys.executable, "-c", "import time; time.sleep(120)"], open("/dev/null", "wb"))
print("started", flush=True)
time.sleep(120)
"""


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    parent = subprocess.Popen([sys.executable, "-c", CHILD, str(home)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline() == "started\n"
    pids = [int(e["pid"]) for e in recorded(home)]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if alive(p)] == []


def test_up_with_several_workers_on_embedded_chdb_refuses_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "RAPPORT_HOME": str(tmp_path / "home")}
    env.pop("RAPPORT_WAREHOUSE_URL", None)
    result = rapport(env, "up", "--workers", "2")
    assert result.returncode == 2
    assert "set RAPPORT_WAREHOUSE_URL=http" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "broker.log").exists()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 40 MB tmpfs filled up to its last 300 kB (needs the right to mount, as root in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the FullDisk test covers it"
        )
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.broker  # the one-shot ingest starts the embedded broker and a worker
def test_a_real_full_disk_stops_replay_and_ingest_with_one_line_and_exit_2(
    small_disk: Path, small_dataset: Path
) -> None:
    env = {**os.environ, "RAPPORT_HOME": str(small_disk / "home")}
    env.pop("RAPPORT_WAREHOUSE_URL", None)
    assert rapport(env, "warehouse", "migrate").returncode == 0
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 300 * 1024))
    started = time.monotonic()
    result = rapport(env, "replay", str(small_dataset))
    assert time.monotonic() - started < 30
    assert result.returncode == 2, result.stderr
    assert "disk is full" in result.stderr and "Traceback" not in result.stderr
    started = time.monotonic()
    result = rapport(env, "ingest", "dataset", str(small_dataset))
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stderr
    assert "is full" in result.stderr and "Traceback" not in result.stderr
    assert [e for e in recorded(small_disk / "home") if alive(int(e["pid"]))] == []
