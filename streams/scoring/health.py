"""Account health and depth: the row written once per account per day, and the account's day
part (decayed activity sums, closed days' scores) it is computed from.

Every signal is bounded (value / target, capped at 1), weighted by the profile and explained;
the row is a pure function of the state and a moment, so live and replay agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.records import HealthRow, HeldInteraction
from streams.scoring.buyers import Buyers
from streams.scoring.profile import DAY, Profile
from streams.scoring.sellers import Sellers

DECAYED = ("total", "intensity", "inbound", "sent", "answered", "value_sum", "value_n")
TIERS = ("healthy", "watch", "at_risk", "disengaged")


def touches(item: HeldInteraction) -> bool:
    """An interaction that counts as activity: external and not a cancellation."""
    return item.direction != "internal" and item.status != "cancelled"


def buyer_side(item: HeldInteraction) -> bool:
    """What the buyer side does (writes, meets): intensity counts these; total counts every touch."""
    return item.direction in ("inbound", "mutual") or item.channel == "meeting"


@dataclass(slots=True)
class DayHealth:
    decay: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DECAYED, 0.0))
    decayed_at: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)  # closed day -> score, for the trend
    interactions: int = 0
    automated: int = 0
    last_touch: float = 0.0
    recent: list[str] = field(default_factory=list)  # newest settled event ids, for explanations

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

    def note_interaction(self, at: float, event_id: str, item: HeldInteraction, profile: Profile) -> None:
        if int(item.version) == 0:
            self.interactions += 1
        if touches(item):
            inbound = float(item.direction == "inbound")
            self.add_decayed(at, profile, total=1.0, intensity=float(buyer_side(item)), inbound=inbound)
            self.last_touch = max(self.last_touch, at)
        self.recent = [event_id, *self.recent][: profile.evidence_ids]

    def note_closed(self, day: int, score: float, profile: Profile) -> None:
        """A day closed with ``score``; keeps the trend's worth of closed days."""
        self.scores[str(day)] = score
        keep = day - int(profile.health.trend_days) - 7
        if len(self.scores) > profile.health.trend_days + 14:
            self.scores = {d: s for d, s in self.scores.items() if int(d) >= keep}

    def score_on_or_before(self, day: int) -> float | None:
        if (score := self.scores.get(str(day))) is not None:  # every closed day has a score
            return score
        earlier = [int(d) for d in self.scores if int(d) <= day]
        return self.scores[str(max(earlier))] if earlier else None


def tier_for(score: float, profile: Profile) -> str:
    h = profile.health
    if score >= h.tier_healthy:
        return "healthy"
    if score >= h.tier_watch:
        return "watch"
    if score >= h.tier_at_risk:
        return "at_risk"
    return "disengaged"


def held_tier(held: str | None, tier: str, score: float, profile: Profile) -> str:
    """The tier alerts compare the next day with: a better tier at once, a worse one only once the
    score is ``tier_drop_margin`` points inside it (a sparse account's score hovering at a
    boundary crossed it back and forth: presto-k's ubspw.com fell from watch to at_risk at 50,
    one point under the boundary, and that alert was hand-labelled wrong)."""
    margin = profile.alerts.tier_drop_margin
    if held is None or TIERS.index(tier) <= TIERS.index(held):
        return tier
    lowered = tier_for(score + margin, profile)
    return lowered if TIERS.index(lowered) > TIERS.index(held) else held


def engaged_contacts(buyers: Buyers, now: float, profile: Profile) -> list[str]:
    """Buyer contacts who wrote to the seller side (sent mail, organised a meeting, a logged call)
    within the window; being cc'd or written to is not engagement."""
    since = now - profile.health.engaged_window_days * DAY
    return sorted(c for c, t_in in buyers.last_in.items() if since <= t_in <= now)


def balance(inbound: float, total: float) -> float | None:
    """Reciprocity: 1 − |in − out| / (in + out) on decayed sums (out = every other touch), so a
    one-way stream either way scores 0 and an even exchange 1; ``None`` with too little evidence."""
    if total < 0.25:
        return None
    return 1.0 - abs(inbound - (total - inbound)) / total


def _ratio(numerator: float, denominator: float) -> float | None:
    """A share, or None when there is too little recent evidence to say (scored at half credit)."""
    return numerator / denominator if denominator >= 0.25 else None


def _signal(value: float | None, target: float, weight: float) -> dict[str, Any]:
    share = 0.5 if value is None else min(max(value, 0.0) / target, 1.0) if target > 0 else 1.0
    return {
        "value": None if value is None else round(value, 3),
        "target": target,
        "weight": weight,
        "contribution": round(weight * share, 3),
    }


def account_health(
    account_id: str,
    day_part: DayHealth,
    buyers: Buyers,
    sellers: Sellers,
    now: float,
    profile: Profile,
    version: int,
) -> HealthRow:
    """The health row for the day of ``now``."""
    h, d = profile.health, profile.depth
    since = now - h.engaged_window_days * DAY
    engaged = engaged_contacts(buyers, now, profile)
    roles = [buyers.role(c) for c in engaged]
    seniorities = {r[0] for r in roles if r[0]}
    departments = {r[1] for r in roles if r[1]}
    engaged_sellers = sorted(s for s, t in sellers.touched.items() if since <= t <= now)
    decayed = day_part.decayed(now, profile)
    signals = {
        "engaged_contacts": _signal(len(engaged), h.target_engaged_contacts, h.weight_engaged_contacts),
        "seniority_coverage": _signal(
            len(seniorities), h.target_seniority_coverage, h.weight_seniority_coverage
        ),
        "function_coverage": _signal(
            len(departments), h.target_function_coverage, h.weight_function_coverage
        ),
        "reciprocity": _signal(
            balance(decayed["inbound"], decayed["total"]), h.target_reciprocity, h.weight_reciprocity
        ),
        "responsiveness": _signal(
            _ratio(decayed["answered"], decayed["sent"]), h.target_responsiveness, h.weight_responsiveness
        ),
        "intensity": _signal(decayed["intensity"], h.target_intensity, h.weight_intensity),
        "seller_coverage": _signal(len(engaged_sellers), h.target_seller_coverage, h.weight_seller_coverage),
        "recent_value": _signal(
            _ratio(decayed["value_sum"], decayed["value_n"]), h.target_recent_value, h.weight_recent_value
        ),
    }
    score = round(min(100.0, max(0.0, sum(s["contribution"] for s in signals.values()))), 3)
    depth_parts = (
        (d.weight_engaged_contacts, len(engaged) / d.target_engaged_contacts),
        (d.weight_seniority_coverage, len(seniorities) / h.target_seniority_coverage),
        (d.weight_function_coverage, len(departments) / h.target_function_coverage),
        (d.weight_seller_coverage, len(engaged_sellers) / h.target_seller_coverage),
    )
    total = sum(w for w, _ in depth_parts) or 1.0
    depth = round(100.0 * sum(w * min(share, 1.0) for w, share in depth_parts) / total, 3)
    day = int(now // DAY)
    before = day_part.score_on_or_before(day - int(h.trend_days))
    trend = round(score - before, 3) if before is not None else 0.0
    gap_name, gap = max(
        ((name, s["weight"] - s["contribution"]) for name, s in signals.items()), key=lambda x: (x[1], x[0])
    )
    top = signals[gap_name]
    top_reason = f"{gap_name}: {top['value']} of {top['target']}" if gap > 0 else ""
    explanation = {
        "signals": signals,
        "engaged": engaged[:20],
        "sellers_engaged": engaged_sellers,
        "trend_30d": trend,
        "depth": {"seniorities": sorted(seniorities), "departments": sorted(departments)},
        "events": day_part.recent,
        "interactions": day_part.interactions,
        "automated_excluded": day_part.automated,
    }
    return HealthRow(
        account_id=account_id,
        as_of=datetime.fromtimestamp(now, UTC).date(),
        score=score,
        tier=tier_for(score, profile),
        depth=depth,
        engaged_contacts=len(engaged),
        explanation=orjson.dumps(explanation, option=orjson.OPT_SORT_KEYS).decode(),
        model_version=profile.model_version,
        version=version,
        trend_30d=trend,
        seniority_coverage=len(seniorities),
        function_coverage=len(departments),
        sellers_engaged=len(engaged_sellers),
        coverage=sorted({f"{r[0] or 'unknown'}:{r[1] or 'unknown'}" for r in roles}),
        last_touch=datetime.fromtimestamp(max(day_part.last_touch, 0.0), UTC),
        top_reason=top_reason,
    )
