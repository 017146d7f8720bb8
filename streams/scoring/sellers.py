"""The seller side of an account: who touched it and when, their CRM and internal work, the
owner, and the open opportunities. Health reads it for seller coverage, preparedness for CRM and
internal preparation, alerts for single-threading and an owner who never made contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.records import HeldAccount, HeldInteraction, HeldOpportunity


@dataclass(slots=True)
class Sellers:
    touched: dict[str, float] = field(default_factory=dict)  # seller -> last touch
    crm_work: dict[str, list[Any]] = field(default_factory=dict)  # seller -> [time, id] of CRM activity
    internal_work: dict[str, list[Any]] = field(default_factory=dict)  # seller -> [time, id] internal
    owner: str = ""
    opportunities: dict[str, list[str]] = field(default_factory=dict)  # id -> [stage, status]

    def note_interaction(self, at: float, event_id: str, item: HeldInteraction) -> None:
        for seller in item.sellers:
            self.touched[seller] = max(self.touched.get(seller, 0.0), at)
        if item.direction == "internal":
            work = self.crm_work if item.channel == "crm" else self.internal_work
            for seller in item.sellers:
                work[seller] = [at, event_id]

    def note_opportunity(self, opportunity: HeldOpportunity) -> bool:
        """A CRM opportunity record; True when an open opportunity moved to another stage."""
        before = self.opportunities.get(opportunity.opportunity_id)
        self.opportunities[opportunity.opportunity_id] = [opportunity.stage, opportunity.status]
        return before is not None and before[0] != opportunity.stage and opportunity.status == "open"

    def note_owner(self, account: HeldAccount) -> bool:
        """A CRM account record; True when it hands the account to a new owner."""
        changed = bool(self.owner and account.owner and account.owner != self.owner)
        self.owner = account.owner or self.owner
        return changed

    def open_opportunities(self) -> list[str]:
        return sorted(o for o, (_, status) in self.opportunities.items() if status == "open")
