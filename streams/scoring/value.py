"""Value per interaction, finalised when its buyer-response window closes.

A seller-initiated email or meeting opens a window; what the buyer does inside it is recorded
as outcomes (replied, replied faster than their own norm, brought in colleagues, accepted, met
again, the opportunity advanced; cancellations and declines count against). Buyer-initiated
interactions start high. The row is written when event time (or, when idle, the clock) passes
the window's end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from streams.records import HeldInteraction
from streams.scoring.account import Account
from streams.scoring.profile import DAY, Profile

SENIOR = ("exec", "senior")


def opens_window(item: HeldInteraction) -> bool:
    """External person-to-person email and meetings get a value; CRM entries and bulk mail do not."""
    return (
        item.channel in ("email", "meeting")
        and item.direction in ("outbound", "inbound", "mutual")
        and bool(item.buyers)
        and int(item.version) == 0
    )


def open_window(state: Account, at: float, event_id: str, item: HeldInteraction, profile: Profile) -> None:
    outcomes: dict[str, list[Any]] = {}
    detail = item.detail
    if item.channel == "meeting":
        partstat = detail.get("partstat") or {}
        buyers = item.buyers
        accepted = [b for b in buyers if partstat.get(b) == "ACCEPTED"]
        if accepted:
            outcomes["accepted"] = [event_id, len(accepted) / len(buyers)]
        if any(partstat.get(b) == "DECLINED" for b in buyers):
            outcomes["declined"] = [event_id, 1.0]
        if any(state.contacts.get(b, [""])[0] in SENIOR for b in buyers):
            outcomes["senior_attendees"] = [event_id, 1.0]
    if item.status == "cancelled":
        outcomes["cancelled"] = [event_id, 1.0]
    seller = detail.get("sender") or detail.get("organizer") or ""
    end = at + profile.value.response_window_days * DAY
    state.windows_due = end if state.windows_due is None else min(state.windows_due, end)
    state.open_values[item.interaction_id] = {
        "at": at,
        "event": event_id,
        "ch": item.channel,
        "dir": item.direction,
        "seller": seller if seller in item.sellers else (item.sellers or [""])[0],
        "buyers": item.buyers,
        "outcomes": outcomes,
    }


def note_outcomes(
    state: Account,
    at: float,
    event_id: str,
    item: HeldInteraction,
    new_buyers: list[str],
    profile: Profile,
) -> None:
    """Record what this later buyer-side event means for every window still open."""
    window = profile.value.response_window_days * DAY
    inbound = item.direction in ("inbound", "mutual")
    sender = item.detail.get("sender")
    responders = [sender] if sender in item.buyers else item.buyers
    reply_to = item.in_reply_to
    for iid, value in state.open_values.items():
        outcomes = value["outcomes"]
        if iid == item.interaction_id:  # a later version of the same meeting
            if item.status == "cancelled":
                outcomes["cancelled"] = [event_id, 1.0]
            continue
        if not value["at"] < at <= value["at"] + window:
            continue
        if value["dir"] == "outbound" and inbound and item.channel == "email" and "replied" not in outcomes:
            answers = reply_to is not None and iid == f"email:{reply_to}"
            if answers or set(responders) & set(value["buyers"]):
                outcomes["replied"] = [event_id, 1.0]
                for buyer in set(responders) & set(value["buyers"]):
                    norm = state.reply_norm.get(buyer)
                    delay = at - value["at"]
                    if norm and norm[1] >= 2 and delay < norm[0]:
                        outcomes["replied_fast"] = [event_id, 1.0]
                    state.note_reply_delay(buyer, delay)
        if inbound and new_buyers and "new_colleagues" not in outcomes:
            outcomes["new_colleagues"] = [event_id, 1.0]
        if item.channel == "meeting" and item.status != "cancelled":
            outcomes.setdefault("follow_on_meeting", [event_id, 1.0])


def note_stage_advanced(state: Account, at: float, event_id: str, profile: Profile) -> None:
    window = profile.value.response_window_days * DAY
    for value in state.open_values.values():
        if value["at"] < at <= value["at"] + window:
            value["outcomes"].setdefault("stage_advanced", [event_id, 1.0])


def close_windows(state: Account, until: float, profile: Profile) -> list[dict[str, Any]]:
    """Value rows of the windows that end before ``until``, oldest first."""
    if state.windows_due is None or state.windows_due >= until:
        return []  # the common case, checked without touching the windows
    v = profile.value
    window = v.response_window_days * DAY
    due: list[tuple[float, str]] = []
    next_end: float | None = None
    for iid, value in state.open_values.items():
        end = value["at"] + window
        if end < until:
            due.append((value["at"], iid))
        elif next_end is None or end < next_end:
            next_end = end
    due.sort()
    state.windows_due = next_end
    rows = []
    for _, iid in due:
        value = state.open_values.pop(iid)
        outbound = value["dir"] == "outbound"
        base = v.base_outbound if outbound else v.base_inbound
        points = {name: round(getattr(v, name) * share, 3) for name, (_, share) in value["outcomes"].items()}
        score = round(min(100.0, max(0.0, base + sum(points.values()))), 3)
        if outbound:
            state.add_decayed(value["at"] + window, profile, sent=1.0, answered=float("replied" in points))
            state.add_decayed(value["at"] + window, profile, value_sum=score, value_n=1.0)
        explanation = {
            "base": base,
            "initiated_by": "seller" if outbound else "buyer",
            "outcomes": {
                name: {"points": points[name], "event": evidence}
                for name, (evidence, _) in value["outcomes"].items()
            },
            "window_days": v.response_window_days,
            "event": value["event"],
        }
        rows.append(
            {
                "interaction_id": iid,
                "account_id": state.account_id,
                "occurred_at": datetime.fromtimestamp(value["at"], UTC),
                "score": score,
                "explanation": orjson.dumps(explanation, option=orjson.OPT_SORT_KEYS).decode(),
                "model_version": profile.model_version,
                "version": 1,
                "channel": value["ch"],
                "direction": value["dir"],
                "seller": value["seller"],
                "buyers": value["buyers"],
                "outcomes": sorted(value["outcomes"]),
            }
        )
    return rows
