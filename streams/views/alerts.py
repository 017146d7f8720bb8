"""``rapport alerts``: what was raised, newest first, with the reason and how it ended."""

from __future__ import annotations

from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.views.read import cells, plain, rows, scored_days


def alert_list(client: Any, since: date | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    scored_days(client)
    found = rows(
        client,
        "SELECT al.raised_at AS raised_at, al.account_id AS account_id, a.name AS name, al.kind AS kind, "
        "al.severity AS severity, al.status AS status, al.subject AS subject, al.reason AS reason, "
        "al.ended_at AS ended_at, al.alert_id AS alert_id FROM rapport.alerts AS al FINAL "
        "LEFT JOIN (SELECT account_id, name FROM rapport.accounts FINAL) AS a ON "
        "a.account_id = al.account_id "
        "WHERE toDate(al.raised_at) >= {d:Date} ORDER BY al.raised_at DESC, al.alert_id",
        {"d": since or date(1970, 1, 1)},
    )
    return [plain(a) for a in found[:limit]]


def render_alerts(alerts: list[dict[str, Any]], console: Console) -> None:
    table = Table("raised", "account", "kind", "severity", "status", "reason")
    for a in alerts:
        status = a["status"] + (f" {a['ended_at'][:10]}" if a["ended_at"] else "")
        table.add_row(
            *cells(
                a["raised_at"][:16].replace("T", " "),
                a["account_id"],
                a["kind"],
                a["severity"],
                status,
                a["reason"] + (f" ({a['subject']})" if a["subject"] else ""),
            )
        )
    console.print(table)
    console.print(f"{len(alerts)} alert(s)")
