"""Seller preparedness per external meeting, finalised at the meeting's start.

Scored from what the account state knows when the meeting settles (everything earlier in event
time has settled before it): an agenda, recent CRM work by the seller, known attendees, the
follow-up of the previous meeting, internal preparation and the invitation's lead time. A
signal that cannot apply (no previous meeting, no creation time) leaves the denominator, so a
first meeting is not punished for having no predecessor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.records import HeldInteraction, PreparednessRow, parse_time
from streams.scoring.buyers import Buyers
from streams.scoring.profile import DAY, Profile
from streams.scoring.sellers import Sellers


@dataclass(slots=True)
class Meetings:
    """The account's last external meeting, {id, end, buyers, followed}: was it followed up?"""

    last: dict[str, Any] = field(default_factory=dict)

    def note_interaction(self, at: float, event_id: str, item: HeldInteraction, profile: Profile) -> None:
        """Seller email to an attendee within the follow-up days follows the last meeting up;
        a new meeting becomes the last one."""
        meeting, buyers = self.last, item.buyers
        if item.direction == "outbound" and item.channel == "email" and meeting.get("followed") is None:
            follow_days = profile.preparedness.follow_up_days * DAY
            if (
                meeting
                and meeting["end"] <= at <= meeting["end"] + follow_days
                and set(buyers) & set(meeting["buyers"])
            ):
                meeting["followed"] = event_id
        if item.channel == "meeting" and buyers and item.status != "cancelled":
            end = parse_time(item.detail["end"]).timestamp() if item.detail.get("end") else at
            if meeting.get("id") != item.interaction_id:
                self.last = {"id": item.interaction_id, "end": end, "buyers": buyers, "followed": None}


def _recent(mark: list[Any] | None, start: float, days: float) -> str | None:
    """The event id of a ``[time, id]`` mark that lies within ``days`` before ``start``."""
    if mark and start - days * DAY <= mark[0] < start:
        return str(mark[1])
    return None


def meeting_preparedness(
    account_id: str,
    buyers_part: Buyers,
    sellers: Sellers,
    meetings: Meetings,
    at: float,
    event_id: str,
    meeting: HeldInteraction,
    profile: Profile,
) -> PreparednessRow:
    """The meeting's row, from what the account knew before it (call before noting it)."""
    p = profile.preparedness
    detail = meeting.detail
    buyers: list[str] = meeting.buyers
    organizer = detail.get("organizer") or ""
    seller = organizer if organizer in meeting.sellers else (meeting.sellers or [""])[0]
    created = parse_time(detail["created"]).timestamp() if detail.get("created") else None

    signals: dict[str, dict[str, Any]] = {}

    def signal(name: str, weight: float, share: float | None, evidence: list[str]) -> None:
        signals[name] = {
            "weight": weight,
            "applicable": share is not None,
            "share": None if share is None else round(share, 3),
            "contribution": 0.0 if share is None else round(weight * share, 3),
            "events": evidence,
        }

    agenda_mails = [
        str(mark[1])
        for b in buyers
        if (mark := buyers_part.last_mail_out.get(b)) and (created or at - 14 * DAY) <= mark[0] < at
    ]
    has_description = detail.get("description_length", 0) >= p.agenda_min_description
    signal("agenda", p.weight_agenda, 1.0 if has_description or agenda_mails else 0.0, agenda_mails[:3])
    crm = _recent(sellers.crm_work.get(seller), at, p.crm_prep_days)
    signal("crm_prep", p.weight_crm_prep, 1.0 if crm else 0.0, [crm] if crm else [])
    known = [b for b in buyers if any(buyers_part.role(b)[:2])]
    signal("known_attendees", p.weight_known_attendees, len(known) / len(buyers) if buyers else 0.0, [])
    previous = meetings.last
    if previous:
        followed = previous.get("followed")
        signal("follow_up", p.weight_follow_up, 1.0 if followed else 0.0, [followed] if followed else [])
    else:
        signal("follow_up", p.weight_follow_up, None, [])
    internal = _recent(sellers.internal_work.get(seller), at, p.internal_prep_days)
    signal("internal_prep", p.weight_internal_prep, 1.0 if internal else 0.0, [internal] if internal else [])
    lead = None if created is None else min(max((at - created) / (p.lead_time_full_days * DAY), 0.0), 1.0)
    signal("lead_time", p.weight_lead_time, lead, [])

    applicable = sum(s["weight"] for s in signals.values() if s["applicable"]) or 1.0
    score = round(100.0 * sum(s["contribution"] for s in signals.values()) / applicable, 3)
    missing = sorted(n for n, s in signals.items() if s["applicable"] and s["contribution"] == 0)
    if score >= p.very_prepared:
        tier = "very_prepared"
    elif score >= p.very_prepared / 1.5:
        tier = "prepared"
    else:
        tier = "unprepared"
    explanation = {
        "signals": signals,
        "meeting_event": event_id,
        "buyer_attendees": buyers,
        "lead_time_days": None if created is None else round((at - created) / DAY, 2),
    }
    return PreparednessRow(
        meeting_id=meeting.interaction_id,
        account_id=account_id,
        starts_at=datetime.fromtimestamp(at, UTC),
        seller=seller,
        score=score,
        explanation=orjson.dumps(explanation, option=orjson.OPT_SORT_KEYS).decode(),
        model_version=profile.model_version,
        version=int(meeting.version) + 1,
        status=meeting.status or "",
        tier=tier,
        buyer_attendees=len(buyers),
        missing=missing,
    )
