"""Account health and depth from account state: the row written once per account per day.

Every signal is bounded (value / target, capped at 1), weighted by the profile and explained;
the row is a pure function of the state and a moment, so live and replay agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from streams.scoring.account import Account
from streams.scoring.profile import DAY, Profile

TIERS = ("healthy", "watch", "at_risk", "disengaged")


def tier_for(score: float, profile: Profile) -> str:
    h = profile.health
    if score >= h.tier_healthy:
        return "healthy"
    if score >= h.tier_watch:
        return "watch"
    if score >= h.tier_at_risk:
        return "at_risk"
    return "disengaged"


def held_tier(held: str | None, health: dict[str, Any], profile: Profile) -> str:
    """The tier alerts compare the next day with: a better tier at once, a worse one only once the
    score is ``tier_drop_margin`` points inside it (a sparse account's score hovering at a
    boundary crossed it back and forth: presto-k's ubspw.com fell from watch to at_risk at 50,
    one point under the boundary, and that alert was hand-labelled wrong)."""
    margin = profile.alerts.tier_drop_margin
    tier = str(health["tier"])
    if held is None or TIERS.index(tier) <= TIERS.index(held):
        return tier
    lowered = tier_for(float(health["score"]) + margin, profile)
    return lowered if TIERS.index(lowered) > TIERS.index(held) else held


def engaged_contacts(state: Account, now: float, profile: Profile) -> list[str]:
    """Buyer contacts who wrote to the seller side (sent mail, organised a meeting, a logged call)
    within the window; being cc'd or written to is not engagement."""
    since = now - profile.health.engaged_window_days * DAY
    return sorted(c for c, t_in in state.last_in.items() if since <= t_in <= now)


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


def account_health(state: Account, now: float, profile: Profile, version: int) -> dict[str, Any]:
    """The health row for the day of ``now``."""
    h, d = profile.health, profile.depth
    since = now - h.engaged_window_days * DAY
    engaged = engaged_contacts(state, now, profile)
    roles = [state.contacts.get(c, ["", "", 1]) for c in engaged]
    seniorities = {r[0] for r in roles if r[0]}
    departments = {r[1] for r in roles if r[1]}
    sellers = sorted(s for s, t in state.sellers.items() if since <= t <= now)
    decayed = state.decayed(now, profile)
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
        "seller_coverage": _signal(len(sellers), h.target_seller_coverage, h.weight_seller_coverage),
        "recent_value": _signal(
            _ratio(decayed["value_sum"], decayed["value_n"]), h.target_recent_value, h.weight_recent_value
        ),
    }
    score = round(min(100.0, max(0.0, sum(s["contribution"] for s in signals.values()))), 3)
    depth_parts = (
        (d.weight_engaged_contacts, len(engaged) / d.target_engaged_contacts),
        (d.weight_seniority_coverage, len(seniorities) / h.target_seniority_coverage),
        (d.weight_function_coverage, len(departments) / h.target_function_coverage),
        (d.weight_seller_coverage, len(sellers) / h.target_seller_coverage),
    )
    total = sum(w for w, _ in depth_parts) or 1.0
    depth = round(100.0 * sum(w * min(share, 1.0) for w, share in depth_parts) / total, 3)
    day = int(now // DAY)
    before = state.score_on_or_before(day - int(h.trend_days))
    trend = round(score - before, 3) if before is not None else 0.0
    gap_name, gap = max(
        ((name, s["weight"] - s["contribution"]) for name, s in signals.items()), key=lambda x: (x[1], x[0])
    )
    top = signals[gap_name]
    top_reason = f"{gap_name}: {top['value']} of {top['target']}" if gap > 0 else ""
    explanation = {
        "signals": signals,
        "engaged": engaged[:20],
        "sellers_engaged": sellers,
        "trend_30d": trend,
        "depth": {"seniorities": sorted(seniorities), "departments": sorted(departments)},
        "events": state.recent,
        "interactions": state.interactions,
        "automated_excluded": state.automated,
    }
    return {
        "account_id": state.account_id,
        "as_of": datetime.fromtimestamp(now, UTC).date(),
        "score": score,
        "tier": tier_for(score, profile),
        "depth": depth,
        "engaged_contacts": len(engaged),
        "explanation": orjson.dumps(explanation, option=orjson.OPT_SORT_KEYS).decode(),
        "model_version": profile.model_version,
        "version": version,
        "trend_30d": trend,
        "seniority_coverage": len(seniorities),
        "function_coverage": len(departments),
        "sellers_engaged": len(sellers),
        "coverage": sorted({f"{r[0] or 'unknown'}:{r[1] or 'unknown'}" for r in roles}),
        "last_touch": datetime.fromtimestamp(max(state.last_touch, 0.0), UTC),
        "top_reason": top_reason,
    }
