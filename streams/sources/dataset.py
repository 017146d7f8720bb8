"""A dataset folder: one JSON-lines file of envelopes per source, plus the planted labels.

``rapport generate`` writes it; ``rapport demo``, ``replay`` and the tests read it. Lines are
checked against their contracts while reading; a bad line becomes a :class:`Rejection` with
its reason and original bytes instead of stopping the read.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from streams.contracts import MAX_MESSAGE_BYTES, ContractError, Envelope, decode
from streams.deadletters import dead_letter

FILES = {"email": "email.jsonl", "meeting": "meeting.jsonl", "crm": "crm.jsonl"}
LABELS = "labels.json"


def source_of(schema: str) -> str:
    """Which source (and dataset file) a raw payload schema belongs to."""
    if schema.startswith("raw_email/"):
        return "email"
    if schema.startswith("raw_meeting/"):
        return "meeting"
    if schema.startswith("crm_"):
        return "crm"
    raise ContractError(f"schema {schema!r} is not a raw source schema")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One valid envelope read from a file, with its source (email, meeting, crm)."""

    source: str
    envelope: Envelope
    raw: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """One unusable input with why, where it came from, and its original bytes."""

    origin: str
    reason: str
    raw: bytes

    def letter(self) -> Envelope:
        """Its dead letter (stage ``ingest``), as ``ingest`` publishes it and ``replay`` writes it."""
        return dead_letter(self.origin, "ingest", self.reason, self.raw)


def bounded_lines(handle: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """The lines of ``handle`` (endings kept), never holding more than ``limit`` bytes of one: a
    longer line is skipped in chunks and ``None`` stands in its place, so a 200 MB line without
    a newline costs ``limit`` bytes of memory, not 200 MB (and not the several copies a parser
    makes of it)."""
    while line := handle.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(limit)
            yield None
        else:
            yield line


# Files parsed whole (calendars, JSON exports): the parsers hold several copies of their input,
# so a bigger file is rejected before it is read (split it). Line-based files stream instead.
MAX_WHOLE_FILE = 64 * 1024 * 1024


def read_whole(path: Path, what: str) -> bytes | Rejection:
    """The bytes of a file parsed whole, or a rejection when it is over :data:`MAX_WHOLE_FILE`."""
    size = path.stat().st_size
    if size > MAX_WHOLE_FILE:
        return Rejection(
            str(path), f"{what} of {size:,} bytes is over the {MAX_WHOLE_FILE:,}-byte limit: split it", b""
        )
    return path.read_bytes()


def reason_of(exc: Exception, what: str) -> str:
    """The reason a rejection gives for ``exc``: a contract's own message (it names ids and fields,
    never free text), else only the error's type, because library messages (icalendar, dateutil,
    ``int()``, ``fromisoformat``) quote the input they choked on."""
    if isinstance(exc, ContractError):
        return str(exc)
    return f"{what} ({type(exc).__name__})"


def write_dataset(folder: Path, events: Iterable[Envelope], labels: dict[str, Any]) -> dict[str, int]:
    """Write envelopes into one file per source; returns lines written per file."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(FILES.values(), 0)
    handles = {source: (folder / name).open("wb") for source, name in FILES.items()}
    try:
        for envelope in events:
            source = source_of(envelope.schema)
            handles[source].write(envelope.to_bytes() + b"\n")
            counts[FILES[source]] += 1
    finally:
        for handle in handles.values():
            handle.close()
    (folder / LABELS).write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2))
    return counts


def json_objects(raw: bytes, origin: str, containers: tuple[str, ...]) -> list[tuple[str, Any]] | Rejection:
    """The objects of a JSON export: one object, a list, or ``{container: [...]}``.

    Returns ``(where, object)`` pairs (non-objects included, for the caller to reject), or a
    rejection of the whole file.
    """
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses numbers beyond a double or 64-bit integer (``1e400``) and NaN, and so the
        # whole file; the standard parser reads them (as inf / big ints) so that only the message
        # holding one is rejected, by the contract's number bounds.
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return Rejection(origin, f"not valid JSON: {exc}", b"")
    if isinstance(document, dict):
        document = next((document[c] for c in containers if document.get(c)), [document])
    if not isinstance(document, list):
        return Rejection(origin, "expected a JSON object or a list of them", b"")
    return [(f"{origin}#{n}", item) for n, item in enumerate(document)]


def read_labels(folder: Path) -> dict[str, Any]:
    return orjson.loads((folder / LABELS).read_bytes())


def _read_file(path: Path) -> Iterator[SourceRecord | Rejection]:
    with path.open("rb") as handle:
        for number, line in enumerate(bounded_lines(handle, MAX_MESSAGE_BYTES + 2), start=1):
            if line is None:
                yield Rejection(
                    f"{path}:{number}", f"line longer than the {MAX_MESSAGE_BYTES:,}-byte limit", b""
                )
                continue
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                envelope = decode(raw)
                yield SourceRecord(source_of(envelope.schema), envelope, raw)
            except ContractError as exc:
                yield Rejection(f"{path}:{number}", str(exc), raw)


def _sort_key(item: SourceRecord | Rejection) -> str:
    # Rejections have no trustworthy time; they go out as soon as they are read.
    return item.envelope.occurred_at if isinstance(item, SourceRecord) else ""


def read_dataset(folder: Path) -> Iterator[SourceRecord | Rejection]:
    """All records of a dataset folder, merged in event-time order across its files."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a dataset folder (run `rapport generate --out {folder}`)")
    paths = [folder / name for name in FILES.values() if (folder / name).is_file()]
    if not paths:
        raise FileNotFoundError(
            f"{folder}: no {', '.join(FILES.values())} found (run `rapport generate --out {folder}`)"
        )
    return heapq.merge(*(_read_file(p) for p in paths), key=_sort_key)


def count_lines(folder: Path) -> int:
    """Non-empty lines across the dataset's files, for progress bars."""
    total = 0
    for name in FILES.values():
        path = folder / name
        if path.is_file():
            with path.open("rb") as handle:
                total += sum(1 for line in handle if line.strip())
    return total
