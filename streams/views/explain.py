"""``rapport explain``: why an account or a meeting scores what it does, from the stored rows.

Every score row carries its explanation (signals, contributions, the events behind them), so
explaining is reading, not recomputing: what the board shows is what is explained here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from streams.views.labels import (
    ALERT_KINDS,
    HEALTH_SIGNALS,
    PREPAREDNESS_SIGNALS,
    TIERS,
    figure,
    happened,
    label,
    people,
    top_reason,
)
from streams.views.read import ViewError, find_account, rows
from streams.views.terminal import Column, Output

__all__ = ["ViewError", "account_explanation", "meeting_explanation", "render_account", "render_meeting"]


HEALTH_COLUMNS = (
    "as_of, score, tier, depth, engaged_contacts, trend_30d, top_reason, explanation, model_version"
)


def account_explanation(client: Any, account_id: str, since: date | None = None) -> dict[str, Any]:
    """The account's latest health row, what changed since ``since``, its evidence and alerts;
    ``account_id`` may be an id prefix, a domain or a name (``find_account``)."""
    account_id = find_account(client, account_id)
    latest = rows(
        client,
        f"SELECT {HEALTH_COLUMNS} FROM rapport.account_health FINAL "
        "WHERE account_id = {a:String} ORDER BY as_of DESC LIMIT 1",
        {"a": account_id},
    )
    if not latest:
        crm = rows(
            client,
            "SELECT name, owner FROM rapport.accounts FINAL WHERE account_id = {a:String}",
            {"a": account_id},
        )
        if crm:
            raise ViewError(
                f"{crm[0]['name'] or account_id} ({account_id}) is a CRM account with no engagement "
                f"yet (owner {crm[0]['owner'] or 'none'}): nothing has been scored; it is listed by "
                "`rapport accounts --tier no_engagement`"
            )
        raise ViewError(
            f"no health scores for account {account_id!r}; list account ids with `rapport accounts`"
        )
    now = latest[0]
    before = None
    if since is not None:
        earlier = rows(
            client,
            f"SELECT {HEALTH_COLUMNS} FROM rapport.account_health FINAL "
            "WHERE account_id = {a:String} AND as_of <= {d:Date} ORDER BY as_of DESC LIMIT 1",
            {"a": account_id, "d": since},
        )
        before = earlier[0] if earlier else None
    signals = orjson.loads(now["explanation"])
    previous = orjson.loads(before["explanation"])["signals"] if before else {}
    evidence = rows(
        client,
        "SELECT interaction_id, source_event_id, occurred_at, channel, direction, kind, status, "
        "sellers, buyers "
        "FROM rapport.interactions FINAL WHERE account_id = {a:String} "
        "AND source_event_id IN {ids:Array(String)} ORDER BY occurred_at DESC",
        {"a": account_id, "ids": signals.get("events", [])},
    )
    moved = {}
    if since is not None:
        moved = rows(
            client,
            "SELECT countIf(direction = 'outbound') AS outbound, countIf(direction = 'inbound') AS inbound, "
            "countIf(channel = 'meeting') AS meetings FROM rapport.interactions FINAL "
            "WHERE account_id = {a:String} AND automated = 0 AND toDate(occurred_at) > {d:Date}",
            {"a": account_id, "d": since},
        )[0]
    alerts = rows(
        client,
        "SELECT raised_at, kind, severity, status, reason FROM rapport.alerts FINAL "
        "WHERE account_id = {a:String} AND (status = 'open' OR raised_at >= {d:Date}) "
        "ORDER BY raised_at DESC",
        {"a": account_id, "d": since or now["as_of"]},
    )
    return {
        "account_id": account_id,
        "as_of": str(now["as_of"]),
        "score": now["score"],
        "tier": now["tier"],
        "trend_30d": now["trend_30d"],
        "depth": now["depth"],
        "engaged_contacts": now["engaged_contacts"],
        "top_reason": now["top_reason"],
        "model_version": now["model_version"],
        "signals": {
            name: {**signal, "change": round(signal["contribution"] - previous[name]["contribution"], 3)}
            if name in previous
            else signal
            for name, signal in signals["signals"].items()
        },
        "engaged": signals.get("engaged", []),
        "since": None
        if since is None
        else {
            "date": str(since),
            "score_then": before["score"] if before else None,
            "tier_then": before["tier"] if before else None,
            "interactions_after": moved,
        },
        "evidence": [{**e, "occurred_at": str(e["occurred_at"])} for e in evidence],
        "alerts": [{**a, "raised_at": str(a["raised_at"])} for a in alerts],
    }


def meeting_explanation(client: Any, meeting_id: str) -> dict[str, Any]:
    """A meeting's preparedness row; ``meeting_id`` with or without ``meeting:``, any case, or a
    unique prefix. Each signal's evidence events are looked up as interactions."""
    wanted = meeting_id if meeting_id.lower().startswith("meeting:") else f"meeting:{meeting_id}"
    candidates = rows(
        client,
        "SELECT DISTINCT meeting_id FROM rapport.meeting_preparedness "
        "WHERE startsWith(lower(meeting_id), lower({m:String})) ORDER BY meeting_id LIMIT 11",
        {"m": wanted},
    )
    ids = [c["meeting_id"] for c in candidates]
    exact = [i for i in ids if i.lower() == wanted.lower()]
    if len(ids) > 1 and len(exact) != 1:
        raise ViewError(
            f"{meeting_id!r} matches {'more than 10' if len(ids) > 10 else len(ids)} meetings: "
            f"{', '.join(ids[:10])}; give more of the id"
        )
    found = rows(
        client,
        "SELECT meeting_id, account_id, starts_at, seller, score, tier, status, missing, explanation, "
        "model_version FROM rapport.meeting_preparedness FINAL WHERE meeting_id = {m:String}",
        {"m": (exact or ids or [wanted])[0]},
    )
    if not found:
        raise ViewError(
            f"no preparedness score for meeting {meeting_id!r} (ids look like 'meeting:<iCal UID>'); "
            "list an account's meetings with `rapport account ID`"
        )
    row = found[0]
    explanation = orjson.loads(row.pop("explanation"))
    events = {e: name for name, s in explanation["signals"].items() for e in s["events"]}
    evidence = rows(
        client,
        "SELECT source_event_id, occurred_at, channel, direction, kind, status, sellers, buyers "
        "FROM rapport.interactions FINAL WHERE account_id = {a:String} "
        "AND source_event_id IN {ids:Array(String)} ORDER BY occurred_at",
        {"a": row["account_id"], "ids": sorted(events)},
    )
    return {
        **row,
        "starts_at": str(row["starts_at"]),
        **explanation,
        "evidence": [
            {**e, "signal": events[e["source_event_id"]], "occurred_at": str(e["occurred_at"])}
            for e in evidence
        ],
    }


def render_account(view: dict[str, Any], out: Output) -> None:
    out.line(
        (view["account_id"], "bold"),
        f" on {view['as_of']}: health ",
        (f"{view['score']:.0f}", "bold"),
        f" ({label(view['tier'], TIERS)}), 30-day trend {view['trend_30d']:+.0f}, depth {view['depth']:.0f}, "
        f"{view['engaged_contacts']} engaged contact(s)  ",
        (view["model_version"], "dim"),
    )
    if view["since"]:
        then = view["since"]
        score_then = "n/a" if then["score_then"] is None else f"{then['score_then']:.0f}"
        moved = then["interactions_after"] or {}
        out.line(
            f"since {then['date']}: score was {score_then} "
            f"({label(then['tier_then'], TIERS) if then['tier_then'] else 'no score yet'}); after it "
            f"{moved.get('outbound', 0)} email(s) sent, {moved.get('inbound', 0)} received, "
            f"{moved.get('meetings', 0)} meeting(s)"
        )
    rows = []
    for name, s in sorted(view["signals"].items(), key=lambda item: -item[1]["contribution"]):
        shown, target = figure(name, s["value"], s["target"])
        rows.append(
            [
                label(name, HEALTH_SIGNALS),
                shown,
                target,
                f"{s['contribution']:.1f} of {s['weight']:g}",
                f"{s['change']:+.1f}" if "change" in s else "",
            ]
        )
    out.table(
        [
            Column("signal"),
            Column("now"),
            Column("target"),
            Column("points", right=True),
            Column("change", right=True, drop=1),
        ],
        rows,
    )
    if view["top_reason"]:
        out.line(f"weakest signal: {top_reason(view['top_reason'])}")
    if view["engaged"]:
        out.line(f"engaged contacts: {', '.join(view['engaged'])}")
    if view["evidence"]:
        out.table(
            [Column("time"), Column("channel"), Column("people", drop=2), Column("what happened")],
            [
                [
                    str(e["occurred_at"])[:16].replace("T", " "),
                    e["channel"],
                    people(e["sellers"], e["buyers"], e["direction"]),
                    happened(e["channel"], e["direction"], e["kind"], e["status"]),
                ]
                for e in view["evidence"]
            ],
            title="evidence (most recent interactions behind the score)",
        )
    if view["alerts"]:
        out.table(
            [Column("raised"), Column("alert"), Column("severity", drop=1), Column("status"), Column("why")],
            [
                [
                    str(a["raised_at"])[:16],
                    label(a["kind"], ALERT_KINDS),
                    a["severity"],
                    a["status"],
                    a["reason"],
                ]
                for a in view["alerts"]
            ],
            title="alerts",
        )


def render_meeting(view: dict[str, Any], out: Output) -> None:
    out.line(
        (view["meeting_id"], "bold"),
        f" ({view['account_id']}, {view['starts_at'][:16]}, seller {view['seller']}): preparedness ",
        (f"{view['score']:.0f}", "bold"),
        f" ({label(view['tier'], TIERS)}, {view['status']})  ",
        (view["model_version"], "dim"),
    )
    rows = []
    for name, s in view["signals"].items():
        rows.append(
            [
                label(name, PREPAREDNESS_SIGNALS),
                "yes" if s["applicable"] else "does not apply",
                "" if s["share"] is None else f"{100 * s['share']:.0f} %",
                f"{s['contribution']:.1f} of {s['weight']:g}",
            ]
        )
    out.table(
        [Column("signal"), Column("applies", drop=1), Column("met"), Column("points", right=True)],
        rows,
    )
    if view["evidence"]:
        out.table(
            [
                Column("signal"),
                Column("time"),
                Column("channel"),
                Column("people", drop=1),
                Column("what happened"),
            ],
            [
                [
                    label(e["signal"], PREPAREDNESS_SIGNALS),
                    e["occurred_at"][:16],
                    e["channel"],
                    people(e["sellers"], e["buyers"], e["direction"]),
                    happened(e["channel"], e["direction"], e["kind"], e["status"]),
                ]
                for e in view["evidence"]
            ],
            title="evidence",
        )
    if view["missing"]:
        out.line(f"missing: {', '.join(label(m, PREPAREDNESS_SIGNALS) for m in view['missing'])}")
