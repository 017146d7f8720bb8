"""``rapport accounts`` and ``rapport account ID``: the book of accounts and one account in detail.

Both read the latest health row per account (``LIMIT 1 BY``) so the terminal shows what the
boards show; nothing is recomputed here.
"""

from __future__ import annotations

from typing import Any

from streams.scoring.titles import SENIORITIES
from streams.views.explain import account_explanation, render_account
from streams.views.labels import ALERT_KINDS, PREPAREDNESS_SIGNALS, TIERS, buyer_did, happened, label
from streams.views.read import find_account, plain, rows, scored_days
from streams.views.terminal import Column, Output

AT_RISK_TIERS = ("at_risk", "disengaged")
NO_ENGAGEMENT = "no_engagement"  # a CRM account without one scored interaction

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

# Every scored account and every CRM account (scored or not), with its latest health row. The
# owner is the CRM account's owner, else the owner of its latest opportunity (the Maven CRM
# names owners only on opportunities).
LATEST_HEALTH = (
    "SELECT k.account_id AS account_id, ifNull(a.name, '') AS name, "
    "if(ifNull(a.owner, '') != '', a.owner, ifNull(op.latest_owner, '')) AS owner, "
    "h.as_of AS as_of, h.score AS score, h.tier AS tier, h.trend_30d AS trend_30d, h.depth AS depth, "
    "h.engaged_contacts AS engaged_contacts, h.last_touch AS last_touch, h.top_reason AS top_reason, "
    "ifNull(h.sellers_engaged, []) AS sellers_engaged, ifNull(o.open_alerts, 0) AS open_alerts "
    "FROM (SELECT account_id FROM rapport.accounts FINAL WHERE provisional = 0 UNION DISTINCT "
    "SELECT DISTINCT account_id FROM rapport.account_health) AS k "
    "LEFT JOIN (SELECT account_id, as_of, score, tier, trend_30d, depth, engaged_contacts, last_touch, "
    "top_reason, JSONExtract(explanation, 'sellers_engaged', 'Array(String)') AS sellers_engaged "
    "FROM rapport.account_health FINAL ORDER BY account_id, as_of DESC LIMIT 1 BY account_id) AS h "
    "ON h.account_id = k.account_id "
    "LEFT JOIN (SELECT account_id, name, owner FROM rapport.accounts FINAL) AS a ON "
    "a.account_id = k.account_id "
    "LEFT JOIN (SELECT account_id, argMax(owner, updated_at) AS latest_owner "
    "FROM rapport.opportunities FINAL "
    "WHERE owner != '' GROUP BY account_id) AS op ON op.account_id = k.account_id "
    "LEFT JOIN (SELECT account_id, count() AS open_alerts FROM rapport.alerts FINAL WHERE status = 'open' "
    "GROUP BY account_id) AS o ON o.account_id = k.account_id "
    "SETTINGS join_use_nulls = 1"
)


def account_list(
    client: Any,
    tier: tuple[str, ...] = (),
    at_risk: bool = False,
    seller: str | None = None,
    sort: str = "health",
    reverse: bool = False,
    limit: int | None = None,
    alerting: bool = False,
) -> list[dict[str, Any]]:
    """Latest health per account, CRM accounts without engagement included (tier
    ``no_engagement``), filtered and sorted; ``at_risk``: tier at risk or disengaged;
    ``alerting``: an open alert; ``seller``: the owner or a seller in touch."""
    scored_days(client)
    found = rows(client, LATEST_HEALTH)
    for r in found:
        if r["as_of"] is None:
            r["tier"] = NO_ENGAGEMENT
    wanted = seller.lower() if seller else None
    kept = [
        r
        for r in found
        if (not tier or r["tier"] in tier)
        and (not at_risk or r["tier"] in AT_RISK_TIERS)
        and (not alerting or r["open_alerts"] > 0)
        and (wanted is None or wanted in (r["owner"].lower(), *(s.lower() for s in r["sellers_engaged"])))
    ]
    field, largest_first = SORTS[sort]
    # accounts without a figure (no engagement) sort as the worst
    kept.sort(
        key=lambda r: (r[field] is not None, r[field] or 0, r["account_id"]), reverse=largest_first != reverse
    )
    return [plain(r) for r in kept[:limit]]


def render_accounts(accounts: list[dict[str, Any]], out: Output) -> None:
    def number(value: float | None, sign: str = "") -> str:
        return "–" if value is None else f"{value:{sign}.0f}"

    out.table(
        [
            Column("account", whole=True),
            Column("name", drop=3),
            Column("owner", drop=2),
            Column("health", right=True),
            Column("tier"),
            Column("trend", right=True, drop=5),
            Column("depth", right=True, drop=4),
            Column("engaged", right=True, drop=6),
            Column("last touch", drop=7),
            Column("alerts", right=True, drop=1),
        ],
        [
            [
                a["account_id"],
                a["name"],
                a["owner"] or "none",
                number(a["score"]),
                label(a["tier"], TIERS),
                number(a["trend_30d"], "+"),
                number(a["depth"]),
                "–" if a["engaged_contacts"] is None else str(a["engaged_contacts"]),
                (a["last_touch"] or "never")[:10],
                str(a["open_alerts"]),
            ]
            for a in accounts
        ],
    )
    if out.format == "table":
        out.line(f"{len(accounts)} account(s)")


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
    account_id = find_account(client, account_id)
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


def render_account_detail(view: dict[str, Any], out: Output) -> None:
    out.line((f"{view['name'] or view['account_id']} (owner {view['owner'] or 'none'})", "bold"))
    render_account({**view, "since": None, "evidence": [], "alerts": []}, out)
    out.table(
        [
            Column("seniority"),
            Column("function"),
            Column("contact", whole=True),
            Column("title", drop=3),
            Column("interactions", right=True, drop=1),
            Column("last"),
            Column("every (days)", right=True, drop=2),
        ],
        [
            [
                c["seniority"],
                c["department"],
                c["email"] + ("" if c["active"] in (1, None) else " (left)"),
                c["title"] or "",
                str(c["interactions"]),
                (c["last_interaction"] or "")[:10],
                "" if c["cadence_days"] is None else f"{c['cadence_days']:.1f}",
            ]
            for c in view["contacts"]
        ],
        title="contacts",
    )
    out.table(
        [
            Column("meeting", whole=True),
            Column("starts"),
            Column("seller", drop=2),
            Column("status", drop=3),
            Column("preparedness"),
            Column("missing", drop=1),
        ],
        [
            [
                m["meeting_id"],
                m["starts_at"][:16].replace("T", " "),
                m["seller"],
                m["status"],
                f"{m['score']:.0f} ({label(m['tier'], TIERS)})",
                ", ".join(label(x, PREPAREDNESS_SIGNALS) for x in m["missing"]),
            ]
            for m in view["meetings"]
        ],
        title="recent meetings (`rapport explain meeting ID` for one)",
    )
    out.table(
        [
            Column("when"),
            Column("what happened"),
            Column("seller", drop=2),
            Column("buyers", drop=1),
            Column("value", right=True),
            Column("what the buyer did then"),
        ],
        [
            [
                v["occurred_at"][:16].replace("T", " "),
                happened(v["channel"], v["direction"]),
                v["seller"],
                ", ".join(v["buyers"]),
                f"{v['score']:.0f}",
                buyer_did(v["direction"], v["outcomes"]),
            ]
            for v in view["value_moments"]
        ],
        title="recent value moments",
    )
    out.table(
        [
            Column("raised"),
            Column("alert"),
            Column("severity", drop=1),
            Column("status"),
            Column("why"),
        ],
        [
            [
                a["raised_at"][:16].replace("T", " "),
                label(a["kind"], ALERT_KINDS),
                a["severity"],
                a["status"] + (f" (ended {a['ended_at'][:10]})" if a["ended_at"] else ""),
                a["reason"] + (f" ({a['subject']})" if a["subject"] else ""),
            ]
            for a in view["alerts"]
        ],
        title="alerts",
    )
