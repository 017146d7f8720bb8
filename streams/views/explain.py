"""``rapport explain``: why an account or a meeting scores what it does, from the stored rows.

Every score row carries its explanation (signals, contributions, the events behind them), so
explaining is reading, not recomputing: what the board shows is what is explained here.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from streams.views.read import ViewError, rows

__all__ = ["ViewError", "account_explanation", "meeting_explanation", "render_account", "render_meeting"]


HEALTH_COLUMNS = (
    "as_of, score, tier, depth, engaged_contacts, trend_30d, top_reason, explanation, model_version"
)


def account_explanation(client: Any, account_id: str, since: date | None = None) -> dict[str, Any]:
    """The account's latest health row, what changed since ``since``, its evidence and alerts."""
    latest = rows(
        client,
        f"SELECT {HEALTH_COLUMNS} FROM rapport.account_health FINAL "
        "WHERE account_id = {a:String} ORDER BY as_of DESC LIMIT 1",
        {"a": account_id},
    )
    if not latest:
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
        "SELECT interaction_id, source_event_id, occurred_at, channel, direction, length(buyers) AS buyers "
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
    wanted = meeting_id if meeting_id.startswith("meeting:") else f"meeting:{meeting_id}"
    found = rows(
        client,
        "SELECT meeting_id, account_id, starts_at, seller, score, tier, status, missing, explanation, "
        "model_version FROM rapport.meeting_preparedness FINAL WHERE meeting_id = {m:String}",
        {"m": wanted},
    )
    if not found:
        raise ViewError(
            f"no preparedness score for meeting {meeting_id!r} (ids look like 'meeting:<iCal UID>'); "
            "list them with `rapport warehouse query "
            '"SELECT meeting_id FROM rapport.meeting_preparedness LIMIT 20"`'
        )
    row = found[0]
    explanation = orjson.loads(row.pop("explanation"))
    return {**row, "starts_at": str(row["starts_at"]), **explanation}


def render_account(view: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]{view['account_id']}[/] on {view['as_of']}: health [bold]{view['score']:.0f}[/] "
        f"({view['tier']}), 30-day trend {view['trend_30d']:+.0f}, depth {view['depth']:.0f}, "
        f"{view['engaged_contacts']} engaged contact(s)  [dim]{view['model_version']}[/]"
    )
    if view["since"]:
        then = view["since"]
        score_then = "n/a" if then["score_then"] is None else f"{then['score_then']:.0f}"
        console.print(
            f"since {then['date']}: score was {score_then} ({then['tier_then'] or 'no score yet'}); "
            f"interactions after it: {then['interactions_after']}"
        )
    table = Table("signal", "value", "target", "weight", "contribution", "change")
    for name, s in sorted(view["signals"].items(), key=lambda item: -item[1]["contribution"]):
        table.add_row(
            name,
            "n/a (half credit)" if s["value"] is None else str(s["value"]),
            str(s["target"]),
            str(s["weight"]),
            f"{s['contribution']:.1f}",
            f"{s['change']:+.1f}" if "change" in s else "",
        )
    console.print(table)
    if view["top_reason"]:
        console.print(f"weakest signal: {view['top_reason']}")
    if view["engaged"]:
        console.print(f"engaged contacts: {', '.join(view['engaged'])}")
    for e in view["evidence"]:
        console.print(f"  evidence {e['occurred_at']} {e['channel']} {e['direction']}: {e['interaction_id']}")
    for a in view["alerts"]:
        console.print(
            f"  alert {a['raised_at']} [{a['severity']}] {a['kind']} ({a['status']}): {a['reason']}"
        )


def render_meeting(view: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]{view['meeting_id']}[/] ({view['account_id']}, {view['starts_at']}, "
        f"seller {view['seller']}): "
        f"preparedness [bold]{view['score']:.0f}[/] ({view['tier']}, {view['status']})  "
        f"[dim]{view['model_version']}[/]"
    )
    table = Table("signal", "applies", "share", "weight", "contribution", "evidence")
    for name, s in view["signals"].items():
        table.add_row(
            name,
            "yes" if s["applicable"] else "no",
            "" if s["share"] is None else str(s["share"]),
            str(s["weight"]),
            f"{s['contribution']:.1f}",
            ", ".join(s["events"]),
        )
    console.print(table)
    if view["missing"]:
        console.print(f"missing: {', '.join(view['missing'])}")
