"""Words for the model's keys: what a sales leader reads instead of ``crm_prep`` or ``0.001 of 0.7``.

The raw keys stay in ``--json`` and in the warehouse; these labels are only for people. A key
without a label is shown as itself with underscores as spaces, so a new signal is never hidden.
"""

from __future__ import annotations

from typing import Any

HEALTH_SIGNALS = {
    "engaged_contacts": "buyers in two-way contact",
    "seniority_coverage": "seniority levels engaged",
    "function_coverage": "functions engaged",
    "reciprocity": "buyer-started share of contact",
    "responsiveness": "outreach the buyer answered",
    "intensity": "recent contact rhythm",
    "seller_coverage": "sellers in touch",
    "recent_value": "value of recent interactions",
}
PREPAREDNESS_SIGNALS = {
    "agenda": "agenda shared before",
    "crm_prep": "CRM research the week before",
    "known_attendees": "buyer attendees known in the CRM",
    "follow_up": "previous meeting followed up",
    "internal_prep": "internal prep before",
    "lead_time": "invited in good time",
}
OUTCOMES = {
    "replied": "replied",
    "replied_fast": "replied faster than usual",
    "new_colleagues": "brought in new colleagues",
    "accepted": "accepted the meeting",
    "declined": "declined the meeting",
    "cancelled": "cancelled",
    "senior_attendees": "senior people attended",
    "follow_on_meeting": "scheduled a follow-on meeting",
    "stage_advanced": "opportunity stage advanced",
}
TIERS = {
    "healthy": "healthy",
    "watch": "watch",
    "at_risk": "at risk",
    "disengaged": "disengaged",
    "no_engagement": "no engagement",
    "very_prepared": "very prepared",
    "prepared": "prepared",
    "unprepared": "unprepared",
}
ALERT_KINDS = {
    "tier_drop": "tier dropped",
    "health_drop": "health dropped sharply",
    "contact_silent": "key contact silent",
    "unanswered_streak": "outreach unanswered",
    "single_threaded": "single-threaded deal",
    "cancellations": "meetings cancelled",
    "owner_no_contact": "new owner not in touch",
    "engagement_drop": "engagement dropped",
}
# Health signals whose value is a share (shown as a percentage); the others are counts.
SHARES = {"reciprocity", "responsiveness"}
UNITS = {
    "engaged_contacts": "buyers",
    "seniority_coverage": "levels",
    "function_coverage": "functions",
    "intensity": "(decayed touches)",
    "seller_coverage": "sellers",
    "recent_value": "points",
}


def label(key: str, table: dict[str, str] | None = None) -> str:
    """The human label of a key from any of the tables above."""
    for known in (table,) if table else (HEALTH_SIGNALS, PREPAREDNESS_SIGNALS, OUTCOMES, TIERS, ALERT_KINDS):
        if key in known:
            return known[key]
    return key.replace("_", " ")


def figure(name: str, value: Any, target: Any) -> tuple[str, str]:
    """A health signal's value and target in words: ``("0 %", "70 %")``, ``("2 buyers", "4")``;
    no recent evidence (value None) is scored at half credit."""
    if value is None:
        return "no recent evidence (half credit)", _amount(name, target)
    return _amount(name, value), _amount(name, target)


def _amount(name: str, value: Any) -> str:
    if name in SHARES:
        return f"{100 * float(value):.0f} %"
    number = float(value)
    shown = f"{number:.0f}" if number == int(number) or number >= 10 else f"{number:.1f}"
    unit = UNITS.get(name, "")
    return f"{shown} {unit}".strip()


def top_reason(reason: str) -> str:
    """``responsiveness: 0.001 of 0.7`` → ``outreach the buyer answered: 0 % of target 70 %``."""
    name, _, rest = reason.partition(":")
    value, _, target = rest.strip().partition(" of ")
    if not target:
        return label(name) if reason else ""
    try:
        shown, wanted = figure(name, None if value == "None" else float(value), float(target))
    except ValueError:
        return reason
    return f"{label(name, HEALTH_SIGNALS)}: {shown}, target {wanted}"


def happened(channel: str, direction: str, kind: str = "", status: str = "") -> str:
    """What an interaction was, in words: "the buyer wrote", "meeting cancelled"."""
    if channel == "meeting":
        return f"meeting {status or kind or 'scheduled'}".strip()
    who = {
        "inbound": "the buyer wrote",
        "outbound": "the seller wrote",
        "internal": "internal note",
        "mutual": "both sides wrote",
    }.get(direction, direction)
    return who if channel == "email" else f"{channel}: {who}"


def people(sellers: list[str] | None, buyers: list[str] | None, direction: str = "outbound") -> str:
    """``seller@s.com → buyer@b.com, …`` in the direction the interaction went."""
    ours, theirs = ", ".join(sellers or []) or "no seller", ", ".join(buyers or []) or "no buyer"
    return f"{theirs} → {ours}" if direction == "inbound" else f"{ours} → {theirs}"


def buyer_did(direction: str, outcomes: list[str]) -> str:
    """What the buyer did: their outcomes, and for an interaction they started, that they did."""
    done = [label(o, OUTCOMES) for o in outcomes]
    if direction == "inbound":
        return ", ".join(["wrote to the seller", *done])
    return ", ".join(done) or "no response"
