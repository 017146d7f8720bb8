"""What every view shares: rows as dicts, the "nothing to show" error, and the warehouse's extent.

Views only read the score tables (always with FINAL: rows are replaced, never updated in place).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from rich.text import Text


class ViewError(LookupError):
    """Nothing to show; the message says what to do instead."""


def rows(client: Any, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters or {})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def scored_days(client: Any) -> tuple[date, date]:
    """First and last day with a health score; an empty warehouse says how to fill it."""
    found = rows(
        client, "SELECT min(as_of) AS first, max(as_of) AS last, count() AS n FROM rapport.account_health"
    )
    if not found or not found[0]["n"]:
        raise ViewError(
            "the warehouse has no scores yet; fill it with `rapport demo`, `rapport replay PATH` "
            "or `rapport ingest …` (RAPPORT_HOME decides which warehouse is read)"
        )
    return found[0]["first"], found[0]["last"]


def plain(value: Any) -> Any:
    """A JSON-friendly copy: times as ISO strings, the epoch (a DateTime64 default) as None."""
    if isinstance(value, datetime):
        return None if value.timestamp() <= 0 and value.year == 1970 else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def cells(*values: Any) -> list[Text]:
    """Table cells as plain text: names and subjects from real mail may contain rich markup."""
    return [Text("" if v is None else str(v)) for v in values]
