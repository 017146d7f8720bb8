"""What every view shares: rows as dicts, the "nothing to show" error, and the warehouse's extent.

Views only read the score tables (always with FINAL: rows are replaced, never updated in place).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


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


def find_account(client: Any, key: str) -> str:
    """The account id ``key`` names: the id itself, or (case-insensitive) a unique id prefix, a
    domain of the account, or its name (whole, else a unique part of it). Ambiguous keys list
    the candidates; unknown ones say how to list ids."""
    known = rows(
        client,
        "SELECT account_id, any(name) AS name, any(domains) AS domains FROM ("
        "SELECT account_id, name, domains FROM rapport.accounts FINAL UNION ALL "
        "SELECT DISTINCT account_id, '' AS name, [] AS domains FROM rapport.account_health) "
        "GROUP BY account_id ORDER BY account_id",
    )
    if any(a["account_id"] == key for a in known):
        return key
    wanted = key.strip().lower()
    for rule in (
        lambda a: a["account_id"].lower() == wanted,
        lambda a: wanted in (d.lower() for d in a["domains"]) or a["name"].lower() == wanted,
        lambda a: a["account_id"].lower().startswith(wanted),
        lambda a: bool(wanted) and wanted in a["name"].lower(),
    ):
        matches = [a for a in known if rule(a)]
        if len(matches) == 1:
            return str(matches[0]["account_id"])
        if matches:
            listed = ", ".join(
                f"{a['account_id']} ({a['name']})" if a["name"] else a["account_id"] for a in matches[:10]
            )
            more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
            raise ViewError(f"{key!r} matches {len(matches)} accounts: {listed}{more}; give more of it")
    raise ViewError(f"no health scores for account {key!r}; list account ids with `rapport accounts`")


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
