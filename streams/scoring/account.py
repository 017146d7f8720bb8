"""The account's remembered data: the event-time bookkeeping and one part per rule, and how
it is stored.

Each part belongs to the rule module that updates it and says what it means there:
:class:`~streams.scoring.relationship.Evidence` (is it a relationship),
:class:`~streams.scoring.buyers.Buyers`, :class:`~streams.scoring.sellers.Sellers`,
:class:`~streams.scoring.preparedness.Meetings`, :class:`~streams.scoring.value.ValueWindows`,
:class:`~streams.scoring.alerts.AlertBook` and :class:`~streams.scoring.health.DayHealth`. Rules
may read other parts; :class:`streams.scoring.state.AccountState` adds the mechanics (pending,
settle, day close, flush) that call them. Imports the rules' parts only, so no rule imports back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import msgspec

from streams.records import held_from_stored
from streams.scoring.alerts import AlertBook
from streams.scoring.buyers import Buyers
from streams.scoring.health import DayHealth
from streams.scoring.preparedness import Meetings
from streams.scoring.relationship import Evidence
from streams.scoring.sellers import Sellers
from streams.scoring.value import ValueWindows

PARTS: dict[str, type[Any]] = {
    "evidence": Evidence,
    "buyers": Buyers,
    "sellers": Sellers,
    "meetings": Meetings,
    "values": ValueWindows,
    "book": AlertBook,
    "day": DayHealth,
}
LAYOUT = 2  # stored states: 1 (no "layout" key) kept every field flat, with these older names
FLAT_NAMES = {
    "sellers": {"touched": "sellers"},
    "meetings": {"last": "last_meeting"},
    "values": {"open": "open_values", "due": "windows_due"},
    "book": {"open": "alerts_open", "ended": "alerts_ended", "tier": "last_tier"},
    "day": {"scores": "day_scores"},
}


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
    open_day: int | None = None  # the day whose health row is still provisional
    scored_until: float = 0.0  # event time of the last settled (scored) interaction
    first_day: int | None = None  # the day of the first scored interaction
    evidence: Evidence = field(default_factory=Evidence)
    buyers: Buyers = field(default_factory=Buyers)
    sellers: Sellers = field(default_factory=Sellers)
    meetings: Meetings = field(default_factory=Meetings)
    values: ValueWindows = field(default_factory=ValueWindows)
    book: AlertBook = field(default_factory=AlertBook)
    day: DayHealth = field(default_factory=DayHealth)

    def is_relationship(self) -> bool:
        """Only a relationship gets health rows and alerts; other traffic is counted, never scored."""
        return self.evidence.holds()

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = {"layout": LAYOUT}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in PARTS:
                value = {f.name: getattr(value, f.name) for f in fields(value)}
            stored[name] = value
        stored["pending"] = msgspec.to_builtins(self.pending)  # held records as lists of values
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        # Fields a newer model dropped are ignored; ones it added take their defaults.
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in PARTS}
        known["pending"] = [
            [at, event_id, kind, held_from_stored(kind, held)]
            for at, event_id, kind, held in known.get("pending") or ()
        ]
        flat = data.get("layout") is None
        for name, part in PARTS.items():
            renamed = FLAT_NAMES.get(name, {})
            stored = {f.name: renamed.get(f.name, f.name) for f in fields(part)}  # field -> key
            source = data if flat else data.get(name) or {}
            if not flat:
                stored = {f: f for f in stored}
            known[name] = part(**{f: source[key] for f, key in stored.items() if key in source})
        if flat:
            # A state stored before the conversation rule keeps its verdict (it had no topics to test).
            known["evidence"].conversed = data.get("conversed", "exchanged" in data)
        return cls(**known)
