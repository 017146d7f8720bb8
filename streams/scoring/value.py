"""Value per interaction, finalised when its buyer-response window closes.

A seller-initiated email or meeting opens a window; what the buyer does inside it is recorded
as outcomes (replied, replied faster than their own norm, brought in colleagues, accepted, met
again, the opportunity advanced; cancellations and declines count against). Buyer-initiated
interactions start high. The row is written when event time (or, when idle, the clock) passes
the window's end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.records import HeldInteraction, ValueRow
from streams.scoring.buyers import Buyers
from streams.scoring.health import DayHealth
from streams.scoring.profile import DAY, Profile

SENIOR = ("exec", "senior")


@dataclass(slots=True)
class ValueWindows:
    """The interactions whose buyer-response window is still open, and each buyer's usual reply
    delay (what counts as a fast reply)."""

    open: dict[str, dict[str, Any]] = field(default_factory=dict)  # interaction id -> window
    due: float | None = None  # the earliest end of an open window
    reply_norm: dict[str, list[float]] = field(default_factory=dict)  # buyer -> [typical delay s, n]

    def note_reply_delay(self, buyer: str, delay: float) -> None:
        norm = self.reply_norm.get(buyer)
        self.reply_norm[buyer] = [delay, 1.0] if not norm else [0.7 * norm[0] + 0.3 * delay, norm[1] + 1]

    def ended_before(self, until: float, profile: Profile) -> int:
        window = profile.value.response_window_days * DAY
        return sum(1 for v in self.open.values() if v["at"] + window < until)


def opens_window(item: HeldInteraction) -> bool:
    """External person-to-person email and meetings get a value; CRM entries and bulk mail do not."""
    return (
        item.channel in ("email", "meeting")
        and item.direction in ("outbound", "inbound", "mutual")
        and bool(item.buyers)
        and int(item.version) == 0
    )


def open_window(
    windows: ValueWindows,
    buyers_part: Buyers,
    at: float,
    event_id: str,
    item: HeldInteraction,
    profile: Profile,
) -> None:
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
        if any(buyers_part.role(b)[0] in SENIOR for b in buyers):
            outcomes["senior_attendees"] = [event_id, 1.0]
    if item.status == "cancelled":
        outcomes["cancelled"] = [event_id, 1.0]
    seller = detail.get("sender") or detail.get("organizer") or ""
    end = at + profile.value.response_window_days * DAY
    windows.due = end if windows.due is None else min(windows.due, end)
    windows.open[item.interaction_id] = {
        "at": at,
        "event": event_id,
        "ch": item.channel,
        "dir": item.direction,
        "seller": seller if seller in item.sellers else (item.sellers or [""])[0],
        "buyers": item.buyers,
        "outcomes": outcomes,
    }


def note_outcomes(
    windows: ValueWindows,
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
    for iid, value in windows.open.items():
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
                    norm = windows.reply_norm.get(buyer)
                    delay = at - value["at"]
                    if norm and norm[1] >= 2 and delay < norm[0]:
                        outcomes["replied_fast"] = [event_id, 1.0]
                    windows.note_reply_delay(buyer, delay)
        if inbound and new_buyers and "new_colleagues" not in outcomes:
            outcomes["new_colleagues"] = [event_id, 1.0]
        if item.channel == "meeting" and item.status != "cancelled":
            outcomes.setdefault("follow_on_meeting", [event_id, 1.0])


def note_stage_advanced(windows: ValueWindows, at: float, event_id: str, profile: Profile) -> None:
    window = profile.value.response_window_days * DAY
    for value in windows.open.values():
        if value["at"] < at <= value["at"] + window:
            value["outcomes"].setdefault("stage_advanced", [event_id, 1.0])


def close_windows(
    account_id: str, windows: ValueWindows, day_part: DayHealth, until: float, profile: Profile
) -> list[ValueRow]:
    """Value rows of the windows that end before ``until``, oldest first; a closed outbound
    window adds its answer and its value to the day part's decayed sums (health reads them)."""
    if windows.due is None or windows.due >= until:
        return []  # the common case, checked without touching the windows
    v = profile.value
    window = v.response_window_days * DAY
    due: list[tuple[float, str]] = []
    next_end: float | None = None
    for iid, value in windows.open.items():
        end = value["at"] + window
        if end < until:
            due.append((value["at"], iid))
        elif next_end is None or end < next_end:
            next_end = end
    due.sort()
    windows.due = next_end
    rows = []
    for _, iid in due:
        value = windows.open.pop(iid)
        outbound = value["dir"] == "outbound"
        base = v.base_outbound if outbound else v.base_inbound
        points = {name: round(getattr(v, name) * share, 3) for name, (_, share) in value["outcomes"].items()}
        score = round(min(100.0, max(0.0, base + sum(points.values()))), 3)
        if outbound:
            day_part.add_decayed(value["at"] + window, profile, sent=1.0, answered=float("replied" in points))
            day_part.add_decayed(value["at"] + window, profile, value_sum=score, value_n=1.0)
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
            ValueRow(
                interaction_id=iid,
                account_id=account_id,
                occurred_at=datetime.fromtimestamp(value["at"], UTC),
                score=score,
                explanation=orjson.dumps(explanation, option=orjson.OPT_SORT_KEYS).decode(),
                model_version=profile.model_version,
                version=1,
                channel=value["ch"],
                direction=value["dir"],
                seller=value["seller"],
                buyers=value["buyers"],
                outcomes=sorted(value["outcomes"]),
            )
        )
    return rows
