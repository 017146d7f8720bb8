"""Child processes that die with their parent, even when the parent is killed with SIGKILL.

On Linux each child asks the kernel for a signal when its parent dies
(``prctl(PR_SET_PDEATHSIG)``, set between fork and exec). Elsewhere the child's stdin is the read
end of a pipe only the parent holds: a small watchdog thread in the parent is not needed, because
the kernel closes the pipe when the parent dies, and :func:`watch_parent` (called by Rapport's own
child processes at start) exits when it reads end-of-file. Non-Python children (Tansu,
PostgreSQL) rely on the Linux mechanism; on other systems the next command's cleanup
(:func:`kill_recorded`) removes what a crash left.

Every child started here is recorded in ``$RAPPORT_HOME/children.json`` with its command line, so a
command that takes over a stale home lock can end the leftovers of a crashed one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that sets the parent-death signal, or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        os.setsid()  # own process group: the parent's Ctrl-C does not reach the child directly
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def registry(home: Path) -> Path:
    return home / "children.json"


def recorded(home: Path) -> list[dict[str, Any]]:
    try:
        return list(orjson.loads(registry(home).read_bytes()))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return []


def _record(home: Path, pid: int, argv: Sequence[str]) -> None:
    entries = [e for e in recorded(home) if alive(int(e["pid"]))]
    entries.append({"pid": pid, "argv": list(argv)[:4], "started": time.time()})
    home.mkdir(parents=True, exist_ok=True)
    tmp = registry(home).with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(entries))
    tmp.replace(registry(home))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def spawn(
    home: Path,
    argv: Sequence[str],
    log_file: IO[bytes],
    env: dict[str, str] | None = None,
    death_signal: int = signal.SIGKILL,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group, dying with this process; record it under ``home``."""
    preexec = _die_with_parent(death_signal)
    process = subprocess.Popen(
        list(argv),
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # off Linux the child's stdin is a pipe only this process writes to: see watch_parent
        stdin=subprocess.DEVNULL if preexec else subprocess.PIPE,
        start_new_session=preexec is None,
        preexec_fn=preexec,
        user=user,
    )
    _record(home, process.pid, argv)
    return process


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
    """Signal the child's process group, wait, and SIGKILL it if it does not stop in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def kill_recorded(home: Path) -> list[int]:
    """End the children a crashed command left under ``home`` (still alive, same command line)."""
    killed = []
    for entry in recorded(home):
        pid = int(entry["pid"])
        argv = [str(a) for a in entry.get("argv", [])]
        if pid == os.getpid() or not alive(pid) or _cmdline(pid)[: len(argv)] != argv:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        killed.append(pid)
    registry(home).unlink(missing_ok=True)
    return killed


def _is_pipe(fd: int) -> bool:
    import stat

    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def watch_parent() -> None:
    """In a Rapport child off Linux: exit when the parent's pipe on stdin closes."""
    if sys.platform.startswith("linux") or sys.stdin is None or sys.stdin.isatty():
        return
    if not _is_pipe(0):
        return

    def wait() -> None:
        with contextlib.suppress(OSError):
            sys.stdin.buffer.read()
        os._exit(1)

    threading.Thread(target=wait, name="parent-watchdog", daemon=True).start()
