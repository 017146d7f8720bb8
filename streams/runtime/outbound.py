"""Events for downstream systems: account health on ``scores``, alerts on ``alerts``.

The ``alert/1`` payload is the warehouse ``alerts`` row, field for field (same names, same
meaning; times as ISO 8601 text, ``explanation`` as a JSON object), plus ``owner``: the account
owner from the CRM when known. A notifier reading the topic and a query on the table see the
same alert. ``version`` is 1 when raised (``status`` "open") and 2 when resolved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from streams.contracts import Envelope, format_time, make


def health_envelope(row: dict[str, Any]) -> Envelope:
    payload = {
        "account_id": row["account_id"],
        "as_of": row["as_of"].isoformat(),
        "score": row["score"],
        "tier": row["tier"],
        "depth": row["depth"],
        "explanation": orjson.loads(row["explanation"]),
        "model_version": row["model_version"],
        "version": row["version"],
    }
    at = datetime.combine(row["as_of"], datetime.min.time(), UTC)
    event_id = f"health:{row['account_id']}:{row['as_of']}:{row['version']}"
    return make("account_health/1", event_id, "rapport", format_time(at), payload)


def alert_envelope(row: dict[str, Any], owner: str | None) -> Envelope:
    """The ``alert/1`` event of one ``alerts`` row (raised or resolved)."""
    ended = row["ended_at"] if row["status"] == "resolved" else None
    payload = {
        "alert_id": row["alert_id"],
        "account_id": row["account_id"],
        "raised_at": format_time(row["raised_at"]),
        "kind": row["kind"],
        "severity": row["severity"],
        "status": row["status"],
        "subject": row["subject"],
        "reason": row["reason"],
        "explanation": orjson.loads(row["explanation"]),
        "ended_at": None if ended is None else format_time(ended),
        "model_version": row["model_version"],
        "version": row["version"],
        "owner": owner or None,
    }
    event_id = f"alert:{row['account_id']}:{row['alert_id']}:{row['version']}"
    return make("alert/1", event_id, "rapport", format_time(ended or row["raised_at"]), payload)


def latest_health(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest health row per account (what ``scores`` carries)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = latest.get(row["account_id"])
        if held is None or (row["as_of"], row["version"]) >= (held["as_of"], held["version"]):
            latest[row["account_id"]] = row
    return list(latest.values())
