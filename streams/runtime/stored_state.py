"""How account states are stored in the worker's table and its changelog topic: compressed JSON.

A state is about 10 kB of JSON (open value windows, ids seen within the lateness, per-contact
timestamps) and is rewritten, and sent to the changelog, once per account per batch. zlib at
level 1 makes it about 3.6 times smaller for about 60 µs per write (measured on the demo
dataset), which cuts changelog traffic, recovery time and RocksDB size by as much.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

LEVEL = 1


def pack(state: dict[str, Any]) -> bytes:
    return zlib.compress(orjson.dumps(state), LEVEL)


def unpack(data: bytes) -> dict[str, Any]:
    """A stored state; plain JSON (what workers before compression wrote) is read as it is."""
    try:
        document = orjson.loads(data if data[:1] == b"{" else zlib.decompress(data))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise ValueError(f"unreadable stored account state ({len(data)} bytes): {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"a stored account state must be a JSON object, got {type(document).__name__}")
    return document
