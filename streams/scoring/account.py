"""The account's remembered data: the fields every rule reads and writes, and their storage.

The rules (:mod:`streams.scoring.alerts`, ``health``, ``preparedness``, ``value``) take an
:class:`Account`; :class:`streams.scoring.state.AccountState` adds the event-time mechanics
(pending, settle, day close, flush) that call them. Imports no rule, so no rule imports back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streams.records import held_from_stored
from streams.scoring.profile import DAY, Profile
from streams.scoring.relationship import is_relationship

DECAYED = ("total", "intensity", "inbound", "sent", "answered", "value_sum", "value_n")


@dataclass
class Account:
    """What the scorer remembers about one account between events (stored as a plain dict)."""

    account_id: str
    watermark: float = 0.0  # max event time seen (epoch seconds)
    settled_until: float = 0.0  # event time of the last settled event
    settled: int = 0  # events settled
    seen: dict[str, float] = field(default_factory=dict)  # event id -> event time, within lateness
    seen_limit: int = 64  # prune ``seen`` when it grows past this (amortised, not per event)
    pruned: str = ""  # the ids pruned from ``seen``, as a Bloom filter (streams.scoring.bloom)
    pending: list[list[Any]] = field(default_factory=list)  # [at, event id, kind, held record]
    late: int = 0
    rescore: bool = False  # a late record came: the live worker rescores it from the warehouse
    listed: bool = False  # an accounts row exists (from the CRM, or a provisional one written here)
    # the relationship rule's evidence (streams.scoring.relationship), counted as events settle
    crm_listed: bool = False
    exchanged: dict[str, int] = field(default_factory=lambda: {"inbound": 0, "outbound": 0})
    exchange_span: list[float] = field(default_factory=list)  # [first, last] exchanged message time
    affiliate: bool = False  # its people also write from a seller domain (the seller's own)
    conversed: bool = False  # the two sides wrote on one thread or subject (relationship.note_topics)
    topics: dict[str, int] = field(default_factory=dict)  # conversation key -> direction bits, until then
    # buyer side
    contacts: dict[str, list[Any]] = field(default_factory=dict)  # CRM email -> [seniority, dept, active]
    last_out: dict[str, float] = field(default_factory=dict)  # buyer -> last seller->buyer
    last_in: dict[str, float] = field(default_factory=dict)  # buyer -> last time they wrote to sellers
    last_mail_out: dict[str, list[Any]] = field(default_factory=dict)  # buyer -> [time, id] of seller email
    cadence: dict[str, list[float]] = field(default_factory=dict)  # buyer -> [first inbound, inbound count]
    reply_norm: dict[str, list[float]] = field(default_factory=dict)  # buyer -> [typical reply delay s, n]
    unanswered: dict[str, int] = field(default_factory=dict)  # buyer -> seller touches since they last wrote
    # seller side and CRM
    sellers: dict[str, float] = field(default_factory=dict)  # seller -> last touch
    crm_work: dict[str, list[Any]] = field(default_factory=dict)  # seller -> [time, id] of CRM activity
    internal_work: dict[str, list[Any]] = field(default_factory=dict)  # seller -> [time, id] internal
    owner: str = ""
    owner_change: list[Any] = field(default_factory=list)  # [new owner, since] until they make contact
    opportunities: dict[str, list[str]] = field(default_factory=dict)  # id -> [stage, status]
    last_meeting: dict[str, Any] = field(default_factory=dict)  # {id, end, buyers, followed}
    # scores
    decay: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DECAYED, 0.0))
    decayed_at: float = 0.0
    # buyer-side interactions decayed fast (recent) and slowly (the account's own baseline): [sum, as of]
    low_days: int = 0  # consecutive closed days with recent engagement below the drop ratio
    engagement: dict[str, list[float]] = field(
        default_factory=lambda: {"recent": [0.0, 0.0], "usual": [0.0, 0.0]}
    )
    open_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    windows_due: float | None = None  # the earliest end of an open value window
    open_day: int | None = None  # the day whose health row is still provisional
    scored_until: float = 0.0  # event time of the last settled (scored) interaction
    first_day: int | None = None  # the day of the first scored interaction
    day_scores: dict[str, float] = field(default_factory=dict)  # closed day -> score, for the trend
    last_tier: str | None = None
    outreach: list[list[Any]] = field(default_factory=list)  # [time, id] sent since a buyer wrote
    cancellations: list[list[Any]] = field(default_factory=list)  # [time, id] of recent cancels
    alerts_open: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts_ended: dict[str, float] = field(default_factory=dict)
    interactions: int = 0
    automated: int = 0
    last_touch: float = 0.0
    recent: list[str] = field(default_factory=list)  # newest settled event ids, for explanations

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        stored = {k: getattr(self, k) for k in self.__dataclass_fields__}
        stored["pending"] = msgspec.to_builtins(self.pending)  # held records as lists of values
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        # Fields a newer model dropped are ignored; ones it added take their defaults.
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["pending"] = [
            [at, event_id, kind, held_from_stored(kind, held)]
            for at, event_id, kind, held in known.get("pending") or ()
        ]
        # A state stored before the conversation rule keeps its verdict (it had no topics to test).
        known.setdefault("conversed", "exchanged" in data)
        return cls(**known)

    def is_relationship(self) -> bool:
        """Only a relationship gets health rows and alerts; other traffic is counted, never scored."""
        span = self.exchange_span[1] - self.exchange_span[0] if self.exchange_span else 0.0
        inbound, outbound = self.exchanged["inbound"], self.exchanged["outbound"]
        return is_relationship(self.crm_listed, inbound, outbound, self.affiliate, span, self.conversed)

    # --- helpers the rules share ---

    def score_on_or_before(self, day: int) -> float | None:
        if (score := self.day_scores.get(str(day))) is not None:  # every closed day has a score
            return score
        earlier = [int(d) for d in self.day_scores if int(d) <= day]
        return self.day_scores[str(max(earlier))] if earlier else None

    def decayed(self, now: float, profile: Profile) -> dict[str, float]:
        factor = math.pow(
            2.0, -max(now - self.decayed_at, 0.0) / (profile.health.intensity_half_life_days * DAY)
        )
        return {k: v * factor for k, v in self.decay.items()}

    def add_decayed(self, at: float, profile: Profile, **amounts: float) -> None:
        """Exponential decay is order-independent: a late amount adds its weight decayed to now."""
        half = profile.health.intensity_half_life_days * DAY
        if at >= self.decayed_at:
            factor = math.pow(2.0, -(at - self.decayed_at) / half)
            self.decay = {k: v * factor for k, v in self.decay.items()}
            self.decayed_at = at
            weight = 1.0
        else:
            weight = math.pow(2.0, -(self.decayed_at - at) / half)
        for name, amount in amounts.items():
            self.decay[name] += weight * amount

    def note_reply_delay(self, buyer: str, delay: float) -> None:
        norm = self.reply_norm.get(buyer)
        self.reply_norm[buyer] = [delay, 1.0] if not norm else [0.7 * norm[0] + 0.3 * delay, norm[1] + 1]
