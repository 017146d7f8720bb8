"""Event contracts: the JSON Schemas in ``schemas/events`` compiled once into fast validators.

Every message on every topic is an envelope ``{schema, event_id, source, occurred_at, payload}``
whose payload matches the schema named by ``schema`` (``"raw_email/1"`` → ``raw_email.v1.json``).
Producers and the resolve agent call :func:`decode` on each message, so validation is compiled
(fastjsonschema generates Python code per schema) rather than interpreted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson

MAX_MESSAGE_BYTES = 1_000_000


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


def make(schema: str, event_id: str, source: str, occurred_at: str, payload: Mapping[str, Any]) -> Envelope:
    """Build an envelope and check it and its payload against their contracts."""
    envelope = Envelope(schema, event_id, source, occurred_at, dict(payload))
    check("envelope/1", envelope.to_dict())
    check(schema, envelope.payload)
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
    if not isinstance(document, dict):
        raise ContractError(f"envelope/1: expected a JSON object, got {type(document).__name__}")
    check("envelope/1", document)
    check(document["schema"], document["payload"])
    return Envelope(
        document["schema"],
        document["event_id"],
        document["source"],
        document["occurred_at"],
        document["payload"],
    )


def parse_time(value: str) -> datetime:
    """ISO 8601 with offset (as the contracts require) → aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def format_time(value: datetime) -> str:
    """Aware datetime → the contracts' ISO form in UTC with millisecond precision."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
