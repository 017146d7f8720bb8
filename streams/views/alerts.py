"""``rapport alerts``: what was raised, newest first, with the reason and how it ended."""

from __future__ import annotations

from datetime import date
from typing import Any

from streams.views.labels import ALERT_KINDS, label
from streams.views.read import find_account, plain, rows, scored_days
from streams.views.terminal import Column, Output


def alert_list(
    client: Any,
    since: date | None = None,
    limit: int | None = None,
    open_only: bool = False,
    kinds: tuple[str, ...] = (),
    account: str | None = None,
    owner: str | None = None,
) -> list[dict[str, Any]]:
    """Alerts newest first; ``account`` is found as ``find_account`` finds it, ``owner`` is the
    account's CRM owner (or its latest opportunity's), case-insensitive."""
    scored_days(client)
    account_id = find_account(client, account) if account else ""
    found = rows(
        client,
        "SELECT al.raised_at AS raised_at, al.account_id AS account_id, ifNull(a.name, '') AS name, "
        "if(ifNull(a.owner, '') != '', a.owner, ifNull(op.latest_owner, '')) AS owner, al.kind AS kind, "
        "al.severity AS severity, al.status AS status, al.subject AS subject, al.reason AS reason, "
        "al.ended_at AS ended_at, al.alert_id AS alert_id FROM rapport.alerts AS al FINAL "
        "LEFT JOIN (SELECT account_id, name, owner FROM rapport.accounts FINAL) AS a ON "
        "a.account_id = al.account_id "
        "LEFT JOIN (SELECT account_id, argMax(owner, updated_at) AS latest_owner "
        "FROM rapport.opportunities FINAL "
        "WHERE owner != '' GROUP BY account_id) AS op ON op.account_id = al.account_id "
        "WHERE toDate(al.raised_at) >= {d:Date} AND ({open:UInt8} = 0 OR al.status = 'open') "
        "AND (empty({kinds:Array(String)}) OR has({kinds:Array(String)}, al.kind)) "
        "AND ({a:String} = '' OR al.account_id = {a:String}) "
        "ORDER BY al.raised_at DESC, al.alert_id SETTINGS join_use_nulls = 1",
        {"d": since or date(1970, 1, 1), "open": int(open_only), "kinds": list(kinds), "a": account_id},
    )
    if owner:
        found = [a for a in found if a["owner"].lower() == owner.lower()]
    return [plain(a) for a in found[:limit]]


def render_alerts(alerts: list[dict[str, Any]], out: Output) -> None:
    out.table(
        [
            Column("raised"),
            Column("account", whole=True),
            Column("alert"),
            Column("severity", drop=2),
            Column("status", drop=1),
            Column("owner", drop=3),
            Column("why"),
        ],
        [
            [
                a["raised_at"][:16].replace("T", " "),
                a["account_id"],
                label(a["kind"], ALERT_KINDS),
                a["severity"],
                a["status"] + (f" {a['ended_at'][:10]}" if a["ended_at"] else ""),
                a["owner"] or "none",
                a["reason"] + (f" ({a['subject']})" if a["subject"] else ""),
            ]
            for a in alerts
        ],
    )
    if out.format == "table":
        out.line(f"{len(alerts)} alert(s)")
