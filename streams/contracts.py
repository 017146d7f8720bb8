"""Event contracts: the JSON Schemas in ``schemas/events`` compiled once into fast validators.

Every message on every topic is an envelope ``{schema, event_id, source, occurred_at, payload}``
whose payload matches the schema named by ``schema`` (``"raw_email/1"`` → ``raw_email.v1.json``).
Producers and the resolve agent call :func:`decode` on each message, so validation is compiled
(fastjsonschema generates Python code per schema) rather than interpreted.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

# the records' time codec, re-exported: every contract user parses and formats times with it
from streams.records import format_time as format_time
from streams.records import parse_time as parse_time

MAX_MESSAGE_BYTES = 1_000_000
BATCH_SCHEMA = "interaction_batch/1"
BATCH_BYTES = 256_000  # a batch message's records stay well under MAX_MESSAGE_BYTES
BATCH_RECORDS = 5000  # the schema's maxItems


class ContractError(ValueError):
    """A message breaks its contract; ``str()`` is the readable reason."""


def contracts_dir(kind: str) -> Path:
    """``schemas/<kind>``: inside an installed wheel, else the source tree."""
    packaged = Path(__file__).parent / "_contracts" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas" / kind


def schemas_dir() -> Path:
    return contracts_dir("events")


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(schemas_dir().glob("*.v*.json")):
        schema = orjson.loads(path.read_bytes())
        found[schema["x-rapport-schema"]] = schema
    if not found:
        raise FileNotFoundError(f"no event schemas found in {schemas_dir()}")
    return found


@cache
def validator(name: str) -> Callable[[Any], Any]:
    """The compiled validator for a schema name such as ``"raw_email/1"``."""
    try:
        schema = _schemas()[name]
    except KeyError:
        known = ", ".join(sorted(_schemas()))
        raise ContractError(f"unknown schema {name!r}; known schemas: {known}") from None
    return fastjsonschema.compile(schema)


def schema_names() -> list[str]:
    return sorted(_schemas())


def check(name: str, document: Any) -> None:
    """Raise :class:`ContractError` with a readable reason unless ``document`` matches."""
    try:
        validator(name)(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ContractError(f"{name}: {exc.message}") from None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated message: payload schema, stable id, source, event time, payload."""

    schema: str
    event_id: str
    source: str
    occurred_at: str
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "event_id": self.event_id,
            "source": self.source,
            "occurred_at": self.occurred_at,
            "payload": self.payload,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())


# JSON Schema cannot say "finite": NaN passes every bound (NaN > x is false) and orjson writes it
# as null, so live (through the broker) and replay (in memory) stored different rows. Integers
# beyond 64 bits make orjson raise. Both are checked here, where every source builds its records.
MAX_INTEGER = 2**63 - 1
MAX_AMOUNT = 1e15  # an opportunity's amount, in any currency
MAX_SIZE_BYTES = 1e12  # a message's size (Gmail's sizeEstimate)


def _numbers_in_range(value: Any, path: str) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContractError(f"{path} is not a finite number")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise ContractError(f"{path} is out of the 64-bit range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _numbers_in_range(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _numbers_in_range(item, f"{path}[{index}]")


def bounded(value: Any, name: str, low: float, high: float) -> float:
    """``value`` as a finite number within ``low..high``, else :class:`ContractError` naming ``name``
    (never quoting the value: it is input)."""
    if isinstance(value, bool):
        raise ContractError(f"{name} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ContractError(f"{name} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ContractError(f"{name} is not a finite number within {low:g}..{high:g}")
    return number


_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def without_controls(text: str) -> str:
    """``text`` without control characters (NUL, CR, LF, tab…): they split or smuggle fields and
    make look-alike addresses (``jane\\x00@acme.com``)."""
    return _CONTROLS.sub("", text)


def make(schema: str, event_id: str, source: str, occurred_at: str, payload: Mapping[str, Any]) -> Envelope:
    """Build an envelope and check it and its payload against their contracts."""
    envelope = Envelope(schema, event_id, source, occurred_at, dict(payload))
    check("envelope/1", envelope.to_dict())
    check(schema, envelope.payload)
    _numbers_in_range(envelope.payload, f"{schema}: payload")
    return envelope


def decode(data: bytes | str | None) -> Envelope:
    """Parse and validate one message; raise :class:`ContractError` with the reason."""
    if data is None:
        raise ContractError("empty message (no value)")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ContractError(f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES} limit")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not valid JSON/UTF-8: {exc}") from None
    return _envelope(document)


def _envelope(document: Any) -> Envelope:
    if not isinstance(document, dict):
        raise ContractError(f"envelope/1: expected a JSON object, got {type(document).__name__}")
    check("envelope/1", document)
    check(document["schema"], document["payload"])
    _numbers_in_range(document["payload"], f"{document['schema']}: payload")
    return Envelope(
        document["schema"],
        document["event_id"],
        document["source"],
        document["occurred_at"],
        document["payload"],
    )


def batches(account_id: str, records: Sequence[Envelope], floor: str | None = None) -> Iterator[bytes]:
    """``interaction_batch/1`` messages carrying one account's ``records`` in order.

    Each record is serialised once and spliced in; a message holds at most
    :data:`BATCH_RECORDS` records and, unless one record alone is bigger, :data:`BATCH_BYTES`.
    A message's ``occurred_at`` is ``floor`` (default: its first record's time): resolve gives
    the earliest event time of its whole batch, which every account's message of that batch
    shares, so the score agent's watermark never passes a record still to come in the batch
    (messages of one batch reorder its records by account).
    """
    chunk: list[bytes] = []
    size = 0
    for record in records:
        data = record.to_bytes()
        if chunk and (size + len(data) > BATCH_BYTES or len(chunk) == BATCH_RECORDS):
            yield _batch_message(account_id, chunk, floor or records[0].occurred_at)
            chunk, size = [], 0
        chunk.append(data)
        size += len(data) + 1
    if chunk:
        yield _batch_message(account_id, chunk, floor or records[0].occurred_at)


def _batch_message(account_id: str, chunk: list[bytes], occurred_at: str) -> bytes:
    digest = hashlib.blake2b(b"\n".join(chunk), digest_size=16).hexdigest()
    head = orjson.dumps(
        {
            "schema": BATCH_SCHEMA,
            "event_id": f"batch:{digest}",
            "source": "rapport",
            "occurred_at": occurred_at,
        }
    )
    return b"".join(
        (
            head[:-1],
            b',"payload":{"account_id":',
            orjson.dumps(account_id),
            b',"records":[',
            b",".join(chunk),
            b"]}}",
        )
    )


def unbatch(envelope: Envelope) -> tuple[list[Envelope], list[tuple[bytes, str]]]:
    """The records a message carries (a batch's, else the envelope itself), in order, plus each
    record that breaks its contract as ``(its bytes, the reason)``."""
    if envelope.schema != BATCH_SCHEMA:
        return [envelope], []
    records: list[Envelope] = []
    broken: list[tuple[bytes, str]] = []
    for index, document in enumerate(envelope.payload["records"]):
        try:
            record = _envelope(document)
            if record.schema == BATCH_SCHEMA:
                raise ContractError("a batch inside a batch")
            records.append(record)
        except ContractError as exc:
            broken.append((orjson.dumps(document), f"{BATCH_SCHEMA} record {index}: {exc}"))
    return records, broken
