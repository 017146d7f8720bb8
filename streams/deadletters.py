"""Dead letters: unusable input kept with its reason and original bytes, never dropped.

Producers, the resolve agent and ``replay`` all turn a rejection into the same ``dead_letter/1``
envelope (published on the ``deadletter`` topic) and the same ``rejected_events`` row.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

from streams.contracts import Envelope, format_time, make

MAX_REASON = 2000
# A dead letter must fit in one broker message (1 MB by default) with its base64 overhead, so
# only the start of a huge original is kept; the reason says how large it was.
MAX_ORIGINAL = 256 * 1024


def dead_letter(
    topic: str,
    stage: str,
    reason: str,
    raw: bytes | None,
    partition: int | None = None,
    offset: int | None = None,
) -> Envelope:
    """The dead-letter envelope for one rejected input. Its id is stable for the same input."""
    original = raw or b""
    rejected_id = hashlib.sha256(b"|".join([topic.encode(), stage.encode(), original])).hexdigest()[:32]
    if len(original) > MAX_ORIGINAL:
        kept = f" (original of {len(original):,} bytes; first {MAX_ORIGINAL:,} kept)"
        reason = reason[: MAX_REASON - len(kept)] + kept
        original = original[:MAX_ORIGINAL]
    payload = {
        "rejected_id": rejected_id,
        "topic": topic,
        "stage": stage,
        "reason": reason[:MAX_REASON],
        "original_b64": base64.b64encode(original).decode(),
        "partition": partition,
        "offset": offset,
    }
    # Event time of a rejection is unknown by nature; the epoch keeps the id and row stable.
    return make(
        "dead_letter/1", rejected_id, "rapport", format_time(datetime(1970, 1, 1, tzinfo=UTC)), payload
    )


def rejected_row(envelope: Envelope) -> dict[str, Any]:
    p = envelope.payload
    return {
        "rejected_id": p["rejected_id"],
        "topic": p["topic"],
        "stage": p["stage"],
        "reason": p["reason"],
        "original": base64.b64decode(p["original_b64"]),
        "partition": -1 if p.get("partition") is None else p["partition"],
        "offset": -1 if p.get("offset") is None else p["offset"],
        "version": 0,
    }
