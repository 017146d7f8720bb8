"""One owner per ``RAPPORT_HOME``: the commands that run the pipeline or write the warehouse hold a
lock file, so a second one says who is there instead of crashing on a RocksDB or chDB lock.

The lock is ``$RAPPORT_HOME/lock``: an ``fcntl`` lock on the open file (released by the kernel when
the holder dies, however it dies) plus one JSON line naming the holder (pid, command, since). A
lock file whose pid is dead is stale: the next command takes it over, says so, and ends the child
processes the crashed holder left (:func:`streams.runtime.children.kill_recorded`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from streams.runtime.children import kill_recorded


class HomeLocked(RuntimeError):
    """Another command holds this home; the message names it and what to do."""


def lock_path(home: Path) -> Path:
    return home / "lock"


def holder(home: Path) -> dict[str, Any] | None:
    """Who holds ``home`` now (pid, command, since), or None when nobody does."""
    path = lock_path(home)
    try:
        with path.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                info: dict[str, Any] = orjson.loads(path.read_bytes() or b"{}")
                return info
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def describe(info: dict[str, Any]) -> str:
    since = datetime.fromtimestamp(float(info.get("since", 0)), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"`{info.get('command', '?')}` (pid {info.get('pid', '?')}, since {since})"


@contextlib.contextmanager
def home_lock(home: Path, command: str, notice: Any = None) -> Iterator[None]:
    """Hold ``home`` for ``command`` (e.g. ``"rapport up"``) or raise :class:`HomeLocked`.

    ``notice(text)`` is told when a stale lock (its holder died) is taken over.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = lock_path(home)
    handle: IO[bytes] = path.open("a+b")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                info = orjson.loads(handle.read() or b"{}")
            except orjson.JSONDecodeError:
                info = {}
            raise HomeLocked(
                f"{home} is in use by {describe(info)}; stop it first (Ctrl-C, or kill "
                f"{info.get('pid', '?')}), or set RAPPORT_HOME to another folder"
            ) from None
        handle.seek(0)
        previous = handle.read()
        if previous.strip():
            with contextlib.suppress(orjson.JSONDecodeError):
                stale = orjson.loads(previous)
                killed = kill_recorded(home)
                if notice is not None:
                    notice(
                        f"taking over a stale lock on {home}: {describe(stale)} is gone"
                        + (f"; ended its leftover processes {killed}" if killed else "")
                    )
        handle.seek(0)
        handle.truncate()
        handle.write(orjson.dumps({"pid": os.getpid(), "command": command, "since": time.time()}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()  # releases the flock


def command_line() -> str:
    """``rapport <subcommand…>`` as typed, for the lock file."""
    words: list[str] = []
    for word in sys.argv[1:]:
        if word.startswith("-") or len(words) == 2:
            break
        words.append(word)
    return " ".join(["rapport", *words])
