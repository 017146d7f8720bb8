"""The distinct keys the stream wrote to each input table, kept beside the warehouse.

``rapport warehouse check`` compares them with what each table holds: tables are
ReplacingMergeTrees, so stored rows (FINAL) are the distinct keys written, less what ``forget``
deleted. A part that vanished (deleted, or lost with its disk) leaves no trace inside ClickHouse;
this count, kept outside it, still knows the rows were written.

A HyperLogLog per table (2^14 one-byte registers, 16 KiB; standard error 1.04 / 128 = 0.8 %),
updated by the sink on every write: a 64-bit blake2b of the row's key, the first 14 bits pick a
register, the rank of the rest is kept if higher. Every writer process (a worker, replay) keeps
its own file under ``$RAPPORT_HOME/written/`` and folds the others into it when it saves; a
merge is the register-wise maximum, so writers that ran at the same time simply combine. Saved
at most every few seconds and on flush, so a crash loses only the last seconds' keys (the check
then expects fewer, never more).
Score tables are not counted: rescoring replaces their rows with other keys.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

PRECISION = 14
REGISTERS = 1 << PRECISION
REST_BITS = 64 - PRECISION
STANDARD_ERROR = 1.04 / math.sqrt(REGISTERS)
COUNTED = ("accounts", "contacts", "opportunities", "sellers", "interactions", "rejected_events")
SAVE_EVERY_S = 5.0
FORGOTTEN = "forgotten.json"


def key_hash(values: Iterable[Any]) -> int:
    text = "\x1f".join(str(v) for v in values).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def add_hash(registers: bytearray, hashed: int) -> None:
    rest = hashed & ((1 << REST_BITS) - 1)
    rank = REST_BITS - rest.bit_length() + 1
    index = hashed >> REST_BITS
    if rank > registers[index]:
        registers[index] = rank


def estimate(registers: bytes) -> float:
    """HyperLogLog's estimate, with linear counting for small sets (where it is near exact)."""
    alpha = 0.7213 / (1 + 1.079 / REGISTERS)
    raw = alpha * REGISTERS * REGISTERS / sum(2.0**-r for r in registers)
    zeros = registers.count(0)
    if raw <= 2.5 * REGISTERS and zeros:
        return REGISTERS * math.log(REGISTERS / zeros)
    return raw


class WrittenKeys:
    """One writer's registers (``folder/<writer>.hll``)."""

    def __init__(self, folder: Path, writer: str, keys: Mapping[str, tuple[str, ...]]) -> None:
        self.folder, self.keys = folder, keys
        self.path = folder / f"{writer}.hll"
        self.registers: dict[str, bytearray] = {t: bytearray(r) for t, r in read_registers(self.path).items()}
        self.saved_at = time.monotonic()
        self.dirty = False
        self.lock = threading.Lock()  # the sink adds from its insert thread, a timer flushes

    def add(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        if table not in COUNTED:
            return
        columns = self.keys[table]
        with self.lock:
            registers = self.registers.setdefault(table, bytearray(REGISTERS))
            for row in rows:
                add_hash(registers, key_hash(row[c] for c in columns))
            self.dirty = True
            due = time.monotonic() - self.saved_at >= SAVE_EVERY_S
        if due:
            self.flush()

    def flush(self) -> None:
        """Save, folding in the other writers' files (a running writer keeps its registers and
        writes them again; one that ended is kept here), so the folder stays small."""
        with self.lock:
            if self.dirty:
                self._save()

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        others = [p for p in self.folder.glob("*.hll") if p != self.path]
        for path in others:
            for table, registers in read_registers(path).items():
                merge_into(self.registers.setdefault(table, bytearray(REGISTERS)), registers)
        body = orjson.dumps({t: base64.b64encode(bytes(r)).decode() for t, r in self.registers.items()})
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_bytes(body)
        tmp.replace(self.path)
        for path in others:
            path.unlink(missing_ok=True)
        self.saved_at, self.dirty = time.monotonic(), False


def merge_into(into: bytearray, registers: bytes) -> None:
    for index, rank in enumerate(registers):
        if rank > into[index]:
            into[index] = rank


def read_registers(path: Path) -> dict[str, bytes]:
    try:
        document = orjson.loads(path.read_bytes())
        return {
            t: raw
            for t, r in document.items()
            if len(raw := base64.b64decode(r)) == REGISTERS and t in COUNTED
        }
    except (OSError, orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
        return {}


def written_keys(folder: Path) -> dict[str, float]:
    """Every writer's registers merged: the estimated distinct keys written per table."""
    merged: dict[str, bytearray] = {}
    for path in sorted(folder.glob("*.hll")):
        for table, registers in read_registers(path).items():
            merge_into(merged.setdefault(table, bytearray(REGISTERS)), registers)
    return {table: estimate(bytes(r)) for table, r in merged.items()}


def forgotten(folder: Path) -> dict[str, int]:
    try:
        return {str(t): int(n) for t, n in orjson.loads((folder / FORGOTTEN).read_bytes()).items()}
    except (OSError, orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
        return {}


def note_forgotten(folder: Path, deleted: Mapping[str, int]) -> None:
    """Rows ``forget`` deleted (stored versions, an upper bound of the keys): no longer expected."""
    counts = forgotten(folder)
    for table, n in deleted.items():
        counts[table] = counts.get(table, 0) + int(n)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{FORGOTTEN}.{os.getpid()}"
    tmp.write_bytes(orjson.dumps(counts))
    tmp.replace(folder / FORGOTTEN)
