"""``rapport review``: the quarterly relationship review of an account, as data.

Every figure is read from the score tables for the quarter and the one before it, and every
value moment carries the interaction behind it (time, people, channel, what the buyer did), so
the page built from it (streams/views/review_page.py) can link each claim to its evidence.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

from streams.views.labels import ALERT_KINDS, PREPAREDNESS_SIGNALS, label, top_reason
from streams.views.read import ViewError, find_account, plain, rows, scored_days

MOMENTS = 5  # top value moments and weakest interactions listed per quarter


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        found = re.fullmatch(r"(\d{4})-?Q([1-4])", text.strip().upper())
        if not found:
            raise ValueError(f"{text!r} is not a quarter like 2026Q3")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        """The quarter's last day."""
        return self.next().start - timedelta(days=1)

    def next(self) -> Quarter:
        return Quarter(self.year + self.number // 4, self.number % 4 + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - (self.number == 1), (self.number - 2) % 4 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"


def default_quarter(client: Any) -> Quarter:
    """The last quarter whose every day is in the data."""
    first, last = scored_days(client)
    quarter = Quarter.of(last + timedelta(days=1)).previous()
    if quarter.end < first:
        raise ViewError(
            f"no complete quarter in the data (scores from {first} to {last}); "
            f"name the quarter so far with --quarter {Quarter.of(last)}"
        )
    return quarter


def reviewed_accounts(client: Any, quarter: Quarter, account_id: str | None) -> list[str]:
    """Accounts with health rows in the quarter; a clear error when there are none."""
    first, last = scored_days(client)
    account_id = find_account(client, account_id) if account_id else None
    found = [
        r["account_id"]
        for r in rows(
            client,
            "SELECT DISTINCT account_id FROM rapport.account_health FINAL WHERE as_of "
            "BETWEEN {s:Date} AND {e:Date} "
            "AND ({a:String} = '' OR account_id = {a:String}) ORDER BY account_id",
            {"s": quarter.start, "e": quarter.end, "a": account_id or ""},
        )
    ]
    if found:
        return found
    if account_id and not rows(
        client,
        "SELECT 1 FROM rapport.account_health WHERE account_id = {a:String} LIMIT 1",
        {"a": account_id},
    ):
        raise ViewError(
            f"no health scores for account {account_id!r}; list account ids with `rapport accounts`"
        )
    raise ViewError(
        f"no scores in {quarter} ({quarter.start} to {quarter.end}) for "
        f"{account_id or 'any account'}; the data covers {first} to {last}: pick a "
        "quarter in it with --quarter"
    )


def _health(client: Any, account_id: str, start: date, end: date) -> list[dict[str, Any]]:
    return rows(
        client,
        "SELECT as_of, score, tier, depth, engaged_contacts, coverage, top_reason, "
        "JSONExtract(explanation, 'engaged', 'Array(String)') AS engaged, "
        "JSONExtractRaw(explanation, 'signals') AS signals "
        "FROM rapport.account_health FINAL WHERE account_id = {a:String} AND as_of "
        "BETWEEN {s:Date} AND {e:Date} "
        "ORDER BY as_of",
        {"a": account_id, "s": start, "e": end},
    )


def _moments(client: Any, account_id: str, quarter: Quarter, order: str) -> list[dict[str, Any]]:
    """Value rows of the quarter joined to their interaction: the evidence of each claim."""
    return _with_outcome_events(
        rows(
            client,
            "SELECT v.interaction_id AS interaction_id, v.occurred_at AS occurred_at, v.score AS score, "
            "v.channel AS channel, v.direction AS direction, v.outcomes AS outcomes, "
            "JSONExtractRaw(v.explanation, 'outcomes') AS outcome_events, "
            "i.sellers AS sellers, i.buyers AS buyers, i.kind AS kind, i.status AS status, "
            "i.source_event_id AS source_event_id "
            "FROM (SELECT * FROM rapport.interaction_value FINAL WHERE account_id = {a:String} "
            "AND toDate(occurred_at) BETWEEN {s:Date} AND {e:Date}) AS v "
            "LEFT JOIN (SELECT * FROM rapport.interactions FINAL WHERE account_id = {a:String}) AS i "
            "ON i.interaction_id = v.interaction_id "
            f"ORDER BY v.score {order}, v.occurred_at LIMIT {{n:UInt32}}",
            {"a": account_id, "s": quarter.start, "e": quarter.end, "n": MOMENTS},
        )
    )


def _with_outcome_events(moments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each outcome with its points and the event that caused it, parsed from the explanation."""
    for m in moments:
        caused = orjson.loads(m.pop("outcome_events") or "{}")
        m["evidence"] = [
            {"outcome": name, "points": o["points"], "event": o["event"]}
            for name, o in sorted(caused.items())
        ]
    return moments


def _meetings(client: Any, account_id: str, quarter: Quarter) -> list[dict[str, Any]]:
    return rows(
        client,
        "SELECT meeting_id, starts_at, seller, status, score, tier, missing, buyer_attendees "
        "FROM rapport.meeting_preparedness FINAL WHERE account_id = {a:String} "
        "AND toDate(starts_at) BETWEEN {s:Date} AND {e:Date} ORDER BY starts_at",
        {"a": account_id, "s": quarter.start, "e": quarter.end},
    )


# An account's name, its owner (the CRM account's, else its latest opportunity's) and the owner's
# team from the CRM sellers (matched by name or email).
OWNER_AND_TEAM = (
    "SELECT a.name AS name, a.owner AS owner, ifNull(s.team, '') AS team FROM ("
    "SELECT k.account_id AS account_id, ifNull(c.name, '') AS name, "
    "if(ifNull(c.owner, '') != '', c.owner, ifNull(op.latest_owner, '')) AS owner FROM "
    "(SELECT {a:String} AS account_id) AS k "
    "LEFT JOIN (SELECT account_id, name, owner FROM rapport.accounts FINAL "
    "WHERE account_id = {a:String}) AS c "
    "ON c.account_id = k.account_id "
    "LEFT JOIN (SELECT account_id, argMax(owner, updated_at) AS latest_owner "
    "FROM rapport.opportunities FINAL "
    "WHERE account_id = {a:String} AND owner != '' GROUP BY account_id) AS op ON op.account_id = k.account_id"
    ") AS a LEFT JOIN (SELECT lower(key) AS key, any(team) AS team FROM (SELECT name AS key, team FROM "
    "rapport.sellers FINAL UNION ALL SELECT email AS key, team FROM rapport.sellers FINAL) "
    "WHERE key != '' GROUP BY key) AS s ON s.key = lower(a.owner) SETTINGS join_use_nulls = 1"
)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def account_review(client: Any, account_id: str, quarter: Quarter) -> dict[str, Any]:
    """Everything the review page of one account shows, for ``quarter`` against the one before."""
    before = quarter.previous()
    named = rows(client, OWNER_AND_TEAM, {"a": account_id})
    now = _health(client, account_id, quarter.start, quarter.end)
    then = _health(client, account_id, before.start, before.end)
    if not now:
        raise ViewError(f"no scores for account {account_id!r} in {quarter}; pick another --quarter")
    start_row = then[-1] if then else now[0]  # the relationship as the quarter began
    end_row = now[-1]
    engaged_then, engaged_now = set(start_row["engaged"]), set(end_row["engaged"])
    meetings = _meetings(client, account_id, quarter)
    missing = Counter(m for meeting in meetings for m in meeting["missing"])
    alerts = rows(
        client,
        "SELECT alert_id, raised_at, kind, severity, status, subject, reason, ended_at "
        "FROM rapport.alerts FINAL "
        "WHERE account_id = {a:String} AND toDate(raised_at) BETWEEN {s:Date} AND "
        "{e:Date} ORDER BY raised_at",
        {"a": account_id, "s": quarter.start, "e": quarter.end},
    )
    open_at_end = rows(
        client,
        "SELECT kind, severity, reason, subject FROM rapport.alerts FINAL WHERE account_id = {a:String} "
        "AND toDate(raised_at) <= {e:Date} AND (status = 'open' OR toDate(ended_at) > "
        "{e:Date}) ORDER BY raised_at",
        {"a": account_id, "e": quarter.end},
    )
    review = {
        "account_id": account_id,
        "name": named[0]["name"] if named else "",
        "owner": named[0]["owner"] if named else "",
        "team": named[0]["team"] if named else "",
        "quarter": str(quarter),
        "previous_quarter": str(before),
        "period": {"start": quarter.start, "end": quarter.end},
        "health": {
            "series": [{"as_of": r["as_of"], "score": r["score"], "depth": r["depth"]} for r in now],
            "previous_series": [
                {"as_of": r["as_of"], "score": r["score"], "depth": r["depth"]} for r in then
            ],
            "start": {
                "as_of": start_row["as_of"],
                "score": start_row["score"],
                "depth": start_row["depth"],
                "tier": start_row["tier"],
            },
            "end": {
                "as_of": end_row["as_of"],
                "score": end_row["score"],
                "depth": end_row["depth"],
                "tier": end_row["tier"],
                "engaged_contacts": end_row["engaged_contacts"],
                "top_reason": end_row["top_reason"],
                "signals": orjson.loads(end_row["signals"] or "{}"),
            },
            "mean": _mean([r["score"] for r in now]),
            "previous_mean": _mean([r["score"] for r in then]),
            "mean_depth": _mean([r["depth"] for r in now]),
            "previous_mean_depth": _mean([r["depth"] for r in then]),
        },
        "coverage": {
            "then": sorted(start_row["coverage"]),
            "then_as_of": start_row["as_of"],
            "now": sorted(end_row["coverage"]),
            "now_as_of": end_row["as_of"],
        },
        "contacts": {
            "gained": sorted(engaged_now - engaged_then),
            "lost": sorted(engaged_then - engaged_now),
            "engaged": end_row["engaged_contacts"],
            # the explanation lists at most 20 engaged contacts; beyond that gained/lost are partial
            "complete": all(r["engaged_contacts"] <= len(r["engaged"]) for r in (start_row, end_row)),
        },
        "top_moments": _moments(client, account_id, quarter, "DESC"),
        "weakest": _moments(client, account_id, quarter, "ASC"),
        "preparedness": {
            "meetings": meetings,
            "mean": _mean([m["score"] for m in meetings]),
            "previous_mean": _mean([m["score"] for m in _meetings(client, account_id, before)]),
            "tiers": dict(Counter(m["tier"] for m in meetings)),
            "most_missing": missing.most_common(),
        },
        "alerts": alerts,
        "open_at_end": open_at_end,
    }
    review["actions"] = recommended_actions(review)
    return plain(review)


# The gap a signal names -> what to do about it.
SIGNAL_ACTIONS = {
    "engaged_contacts": "Bring more of the buying group into two-way conversation",
    "seniority_coverage": "Reach a seniority level the account is missing (an executive sponsor first)",
    "function_coverage": "Engage another function (finance, IT, procurement…) beyond the current ones",
    "reciprocity": "Give the buyer reasons to start conversations: share insight, ask for their agenda",
    "responsiveness": "Follow up unanswered outreach personally instead of sending more of it",
    "intensity": "Raise the rhythm of buyer-side contact: schedule a working session",
    "seller_coverage": "Bring a second colleague into the relationship",
    "recent_value": "Make each touch count: fewer, more relevant messages",
}
PREP_ACTIONS = {
    "agenda": "Send an agenda (or a note to attendees) before each meeting",
    "crm_prep": "Log account research in the CRM in the week before meetings",
    "known_attendees": "Add every buyer attendee to the CRM with their title",
    "follow_up": "Email attendees within three days after each meeting",
    "lead_time": "Invite at least three days ahead",
    "internal_prep": "Hold a short internal prep before meetings",
}


ACTIONS_SHOWN = 5  # a review page proposes at most this many actions
SEVERITY_POINTS = {"high": 12.0, "medium": 8.0, "low": 4.0}  # impact of an open alert, in health points


def recommended_actions(review: dict[str, Any]) -> list[dict[str, Any]]:
    """At most five actions, ranked by impact (the health points at stake), each naming its gap
    and its evidence. Everything about one buyer (engaged at the start and not at the end, open
    alerts about them) is one action: "Reconnect with X"."""
    health = review["health"]
    end = health["end"]
    signals = end.get("signals") or {}

    def at_stake(name: str, default: float) -> float:
        s = signals.get(name)
        return round(s["weight"] - s["contribution"], 1) if s else default

    candidates: list[dict[str, Any]] = []
    weakest = end["top_reason"].split(":")[0] if end["top_reason"] else ""
    if weakest:
        candidates.append(
            {
                "action": SIGNAL_ACTIONS.get(weakest, f"Work on {label(weakest)}"),
                "gap": f"weakest health signal at quarter end: {top_reason(end['top_reason'])}",
                "evidence": [f"health row of {end['as_of']}"],
                "impact": at_stake(weakest, 5.0),
            }
        )
    levels = {c.split(":")[0] for c in review["coverage"]["now"]}
    if "exec" not in levels and weakest != "seniority_coverage":
        candidates.append(
            {
                "action": SIGNAL_ACTIONS["seniority_coverage"],
                "gap": f"no engaged executive at quarter end (levels: {', '.join(sorted(levels)) or 'none'})",
                "evidence": [f"coverage grid of {review['coverage']['now_as_of']}"],
                "impact": max(at_stake("seniority_coverage", 5.0), 3.0),
            }
        )
    per_contact = at_stake("engaged_contacts", 5.0) / max(len(review["contacts"]["lost"]), 1)
    people: dict[str, dict[str, Any]] = {}
    for contact in review["contacts"]["lost"]:
        people[contact] = {
            "action": f"Reconnect with {contact}",
            "gap": "engaged when the quarter began, no longer two-way at its end",
            "evidence": [
                f"engaged on {review['coverage']['then_as_of']}, not on {review['coverage']['now_as_of']}"
            ],
            "impact": max(per_contact, 2.0),
        }
    account_alerts = []
    for alert in review["open_at_end"]:
        line = f"open alert: {label(alert['kind'], ALERT_KINDS)} ({alert['severity']}): {alert['reason']}"
        points = SEVERITY_POINTS.get(alert["severity"], 4.0)
        if alert["subject"]:
            person = people.setdefault(
                alert["subject"],
                {
                    "action": f"Reconnect with {alert['subject']}",
                    "gap": alert["reason"],
                    "evidence": [],
                    "impact": 0.0,
                },
            )
            person["evidence"].append(line)
            person["impact"] += points
        else:
            account_alerts.append(
                {
                    "action": f"Act on the open alert: {label(alert['kind'], ALERT_KINDS)}",
                    "gap": alert["reason"],
                    "evidence": [line],
                    "impact": points,
                }
            )
    candidates += [*people.values(), *account_alerts]
    prep = review["preparedness"]
    if prep["most_missing"]:
        signal, count = prep["most_missing"][0]
        candidates.append(
            {
                "action": PREP_ACTIONS.get(signal, f"Prepare: {label(signal)}"),
                "gap": f"{label(signal, PREPAREDNESS_SIGNALS)} missing in {count} of {len(prep['meetings'])} "
                "meetings",
                "evidence": [f"preparedness of the quarter's {len(prep['meetings'])} meeting(s)"],
                "impact": round(6.0 * count / max(len(prep["meetings"]), 1), 1),
            }
        )
    if (
        health["previous_mean"] is not None
        and health["mean"] is not None
        and health["mean"] < health["previous_mean"] - 5
    ):
        candidates.append(
            {
                "action": "Review the account plan with the team",
                "gap": f"mean health fell from {health['previous_mean']} to {health['mean']}",
                "evidence": [f"health rows of {review['previous_quarter']} and {review['quarter']}"],
                "impact": round(health["previous_mean"] - health["mean"], 1),
            }
        )
    for c in candidates:
        c["impact"] = round(c["impact"], 1)
    candidates.sort(key=lambda c: (-c["impact"], c["action"]))
    return candidates[:ACTIONS_SHOWN]


def portfolio(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per reviewed account for the index page, weakest health first."""
    lines = [
        {
            "account_id": r["account_id"],
            "name": r["name"],
            "owner": r["owner"],
            "team": r.get("team", ""),
            "score": r["health"]["end"]["score"],
            "tier": r["health"]["end"]["tier"],
            "tier_then": r["health"]["start"]["tier"],
            "change": None
            if r["health"]["previous_mean"] is None
            else round(r["health"]["mean"] - r["health"]["previous_mean"], 1),
            "depth": r["health"]["end"]["depth"],
            "meetings": len(r["preparedness"]["meetings"]),
            "preparedness": r["preparedness"]["mean"],
            "alerts": len(r["alerts"]),
            "actions": len(r["actions"]),
        }
        for r in reviews
    ]
    return sorted(lines, key=lambda line: (line["score"], line["account_id"]))
