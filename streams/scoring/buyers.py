"""The buyer side of an account: who its people are (from the CRM) and when each last wrote or
was written to. Health reads it for engaged contacts and coverage, alerts for silent contacts,
preparedness for agendas and known attendees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.records import HeldContact, HeldInteraction
from streams.scoring.profile import DAY
from streams.scoring.titles import classify_title

UNKNOWN_ROLE = ["", "", 1]  # [seniority, department, active] of a contact the CRM does not list


@dataclass(slots=True)
class Buyers:
    contacts: dict[str, list[Any]] = field(default_factory=dict)  # CRM email -> [seniority, dept, active]
    last_out: dict[str, float] = field(default_factory=dict)  # buyer -> last seller->buyer
    last_in: dict[str, float] = field(default_factory=dict)  # buyer -> last time they wrote to sellers
    last_mail_out: dict[str, list[Any]] = field(default_factory=dict)  # buyer -> [time, id] of seller email
    cadence: dict[str, list[float]] = field(default_factory=dict)  # buyer -> [first inbound, inbound count]
    unanswered: dict[str, int] = field(default_factory=dict)  # buyer -> seller touches since they last wrote

    def role(self, email: str) -> list[Any]:
        return self.contacts.get(email, UNKNOWN_ROLE)

    def new(self, buyers: list[str]) -> list[str]:
        """The buyers nobody on either side has written with before."""
        return [b for b in buyers if b not in self.last_in and b not in self.last_out]

    def rhythm(self) -> tuple[float | None, float | None]:
        """When the buyer side last wrote, and its usual gap between writing occasions (None
        with fewer than two occasions)."""
        if not self.last_in:  # a buyer who wrote has a cadence too (note_interaction)
            return None, None
        occasions = sum(count for _, count in self.cadence.values())
        first = min(first for first, _ in self.cadence.values())
        last = max(self.last_in.values())
        return last, (last - first) / (occasions - 1) if occasions >= 2 else None

    def note_contact(self, contact: HeldContact) -> bool:
        """A CRM contact record; True when it marks an active contact inactive (they left)."""
        seniority, department = classify_title(contact.title)
        was_active = self.role(contact.email)[2]
        self.contacts[contact.email] = [seniority, department, int(contact.active)]
        return bool(was_active) and not contact.active

    def note_interaction(self, at: float, event_id: str, item: HeldInteraction) -> None:
        direction, buyers = item.direction, item.buyers
        if direction in ("outbound", "mutual"):
            for buyer in buyers:
                self.last_out[buyer] = max(self.last_out.get(buyer, 0.0), at)
                self.unanswered[buyer] = self.unanswered.get(buyer, 0) + 1
                if item.channel == "email":
                    self.last_mail_out[buyer] = [at, event_id]
        if direction in ("inbound", "mutual"):
            # Who wrote: the sender (or organizer) of inbound mail, not whoever else was cc'd;
            # every contact of a logged call or meeting.
            author = item.detail.get("sender") or item.detail.get("organizer")
            writers = [author] if direction == "inbound" and author in buyers else buyers
            for buyer in writers:
                previous = self.last_in.get(buyer)
                self.unanswered.pop(buyer, None)
                first, count = self.cadence.get(buyer, [at, 0.0])
                # Cadence counts separate occasions: a burst of replies on one day is one.
                if previous is None or at - previous >= DAY / 2:
                    self.cadence[buyer] = [min(first, at), count + 1]
                self.last_in[buyer] = max(previous or 0.0, at)
