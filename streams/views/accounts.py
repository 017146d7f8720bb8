"""``rapport accounts`` and ``rapport account ID``: the book of accounts and one account in detail.

Both read the latest health row per account (``LIMIT 1 BY``) so the terminal shows what the
boards show; nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from streams.scoring.titles import SENIORITIES
from streams.views.explain import account_explanation, render_account
from streams.views.read import cells, plain, rows, scored_days

AT_RISK_TIERS = ("at_risk", "disengaged")

# --sort key -> (row field, newest/largest first?)
SORTS: dict[str, tuple[str, bool]] = {
    "health": ("score", False),
    "trend": ("trend_30d", False),
    "depth": ("depth", False),
    "engaged": ("engaged_contacts", False),
    "last-touch": ("last_touch", False),
    "alerts": ("open_alerts", True),
    "account": ("account_id", False),
}

LATEST_HEALTH = (
    "SELECT h.account_id AS account_id, a.name AS name, a.owner AS owner, h.as_of AS as_of, "
    "h.score AS score, h.tier AS tier, h.trend_30d AS trend_30d, h.depth AS depth, "
    "h.engaged_contacts AS engaged_contacts, h.last_touch AS last_touch, h.top_reason AS top_reason, "
    "JSONExtract(h.explanation, 'sellers_engaged', 'Array(String)') AS sellers_engaged, "
    "ifNull(o.open_alerts, 0) AS open_alerts "
    "FROM (SELECT * FROM rapport.account_health FINAL ORDER BY account_id, as_of "
    "DESC LIMIT 1 BY account_id) AS h "
    "LEFT JOIN (SELECT account_id, name, owner FROM rapport.accounts FINAL) AS a ON "
    "a.account_id = h.account_id "
    "LEFT JOIN (SELECT account_id, count() AS open_alerts FROM rapport.alerts FINAL WHERE status = 'open' "
    "GROUP BY account_id) AS o ON o.account_id = h.account_id"
)


def account_list(
    client: Any,
    tier: tuple[str, ...] = (),
    at_risk: bool = False,
    seller: str | None = None,
    sort: str = "health",
    reverse: bool = False,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Latest health per account, filtered and sorted; ``at_risk`` means tier at risk or
    disengaged, or an open alert; ``seller`` matches the CRM owner or a seller in touch."""
    scored_days(client)
    found = rows(client, f"{LATEST_HEALTH} SETTINGS join_use_nulls = 0")
    wanted = seller.lower() if seller else None
    kept = [
        r
        for r in found
        if (not tier or r["tier"] in tier)
        and (not at_risk or r["tier"] in AT_RISK_TIERS or r["open_alerts"] > 0)
        and (wanted is None or wanted in (r["owner"].lower(), *(s.lower() for s in r["sellers_engaged"])))
    ]
    field, largest_first = SORTS[sort]
    kept.sort(key=lambda r: (r[field], r["account_id"]), reverse=largest_first != reverse)
    return [plain(r) for r in kept[:limit]]


def render_accounts(accounts: list[dict[str, Any]], console: Console) -> None:
    table = Table(
        "account", "name", "health", "tier", "30-day trend", "depth", "engaged", "last touch", "open alerts"
    )
    for a in accounts:
        table.add_row(
            *cells(
                a["account_id"],
                a["name"] or "",
                f"{a['score']:.0f}",
                a["tier"],
                f"{a['trend_30d']:+.0f}",
                f"{a['depth']:.0f}",
                str(a["engaged_contacts"]),
                (a["last_touch"] or "never")[:16].replace("T", " "),
                str(a["open_alerts"]),
            )
        )
    console.print(table)
    console.print(f"{len(accounts)} account(s)")


def contacts_by_role(client: Any, account_id: str) -> list[dict[str, Any]]:
    """Every buyer the account's interactions name, with role, last interaction and cadence
    (mean days between their interactions; None with fewer than two)."""
    return rows(
        client,
        "SELECT b.email AS email, c.name AS name, c.title AS title, "
        "if(c.seniority = '', 'unknown', c.seniority) AS seniority, "
        "if(c.department = '', 'unknown', c.department) AS department, c.active AS active, "
        "b.interactions AS interactions, b.last_interaction AS last_interaction, "
        "if(b.interactions > 1, round(dateDiff('second', b.first_interaction, b.last_interaction) "
        "/ 86400 / (b.interactions - 1), 1), NULL) AS cadence_days "
        "FROM (SELECT arrayJoin(buyers) AS email, count() AS interactions, "
        "min(occurred_at) AS first_interaction, max(occurred_at) AS last_interaction "
        "FROM rapport.interactions FINAL WHERE account_id = {a:String} AND automated = 0 "
        "GROUP BY email) AS b "
        "LEFT JOIN (SELECT email, name, title, seniority, department, active FROM "
        "rapport.contacts FINAL) AS c "
        "ON c.email = b.email ORDER BY seniority, department, b.last_interaction DESC",
        {"a": account_id},
    )


def account_detail(client: Any, account_id: str, recent: int = 10) -> dict[str, Any]:
    """Scores with their explanation, contacts by role, recent meetings, value moments, alerts."""
    scored_days(client)
    view = account_explanation(client, account_id)
    named = rows(
        client,
        "SELECT name, owner FROM rapport.accounts FINAL WHERE account_id = {a:String}",
        {"a": account_id},
    )
    order = {s: i for i, s in enumerate((*SENIORITIES, "unknown"))}
    contacts = sorted(
        contacts_by_role(client, account_id), key=lambda c: (order.get(c["seniority"], 9), c["department"])
    )
    meetings = rows(
        client,
        "SELECT meeting_id, starts_at, seller, status, score, tier, missing FROM "
        "rapport.meeting_preparedness "
        "FINAL WHERE account_id = {a:String} ORDER BY starts_at DESC LIMIT {n:UInt32}",
        {"a": account_id, "n": recent},
    )
    moments = rows(
        client,
        "SELECT interaction_id, occurred_at, channel, direction, seller, buyers, score, outcomes "
        "FROM rapport.interaction_value FINAL WHERE account_id = {a:String} "
        "ORDER BY occurred_at DESC LIMIT {n:UInt32}",
        {"a": account_id, "n": recent},
    )
    alerts = rows(
        client,
        "SELECT raised_at, kind, severity, status, subject, reason, ended_at FROM rapport.alerts FINAL "
        "WHERE account_id = {a:String} ORDER BY raised_at DESC LIMIT {n:UInt32}",
        {"a": account_id, "n": recent * 2},
    )
    return plain(
        {
            **view,
            "name": named[0]["name"] if named else "",
            "owner": named[0]["owner"] if named else "",
            "contacts": contacts,
            "meetings": meetings,
            "value_moments": moments,
            "alerts": alerts,
        }
    )


def render_account_detail(view: dict[str, Any], console: Console) -> None:
    console.print(
        escape(f"{view['name'] or view['account_id']} (owner {view['owner'] or 'none'})"), style="bold"
    )
    render_account({**view, "since": None, "evidence": [], "alerts": []}, console)
    contacts = Table("seniority", "function", "contact", "title", "interactions", "last", "every (days)")
    for c in view["contacts"]:
        contacts.add_row(
            *cells(
                c["seniority"],
                c["department"],
                c["email"] + ("" if c["active"] in (1, None) else " (left)"),
                c["title"] or "",
                str(c["interactions"]),
                (c["last_interaction"] or "")[:10],
                "" if c["cadence_days"] is None else f"{c['cadence_days']:.1f}",
            )
        )
    console.print(contacts)
    meetings = Table("meeting", "starts", "seller", "status", "preparedness", "missing")
    for m in view["meetings"]:
        meetings.add_row(
            *cells(
                m["meeting_id"],
                m["starts_at"][:16],
                m["seller"],
                m["status"],
                f"{m['score']:.0f} ({m['tier']})",
                ", ".join(m["missing"]),
            )
        )
    console.print(meetings)
    moments = Table("when", "channel", "direction", "seller", "buyers", "value", "what the buyer did")
    for v in view["value_moments"]:
        moments.add_row(
            *cells(
                v["occurred_at"][:16],
                v["channel"],
                v["direction"],
                v["seller"],
                ", ".join(v["buyers"]),
                f"{v['score']:.0f}",
                ", ".join(v["outcomes"]) or "nothing yet",
            )
        )
    console.print(moments)
    for a in view["alerts"]:
        ended = f", ended {a['ended_at'][:10]}" if a["ended_at"] else ""
        console.print(
            escape(
                f"  alert {a['raised_at'][:16]} [{a['severity']}] {a['kind']} "
                f"({a['status']}{ended}): {a['reason']}"
            )
        )
