"""Account health from account state: engaged contacts, recent intensity, reciprocity.

A first, deliberately small model (see docs/scoring.md): every signal is bounded, weighted and
explained, and the row is a pure function of the state, so live and replay agree.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from streams.scoring.profile import Profile

if TYPE_CHECKING:
    from streams.scoring.state import AccountState


def tier_for(score: float, profile: Profile) -> str:
    if score >= profile.tier_healthy:
        return "healthy"
    if score >= profile.tier_watch:
        return "watch"
    if score >= profile.tier_at_risk:
        return "at_risk"
    return "disengaged"


def account_health(state: AccountState, now: float, profile: Profile) -> dict[str, Any]:
    """The health row for the day of ``now`` (the event time of the last settled event)."""
    since = now - profile.engaged_window_s
    engaged = sorted(
        c for c, t_in in state.last_in.items() if t_in >= since and state.last_out.get(c, 0.0) >= since
    )
    decay = math.pow(2.0, -(now - state.decayed_at) / profile.intensity_half_life_s)
    intensity = state.intensity * decay
    reciprocity = state.inbound / state.intensity if state.intensity > 0 else 0.0
    signals = {
        "engaged_contacts": (len(engaged), profile.engaged_target, profile.weight_engaged),
        "intensity": (intensity, profile.intensity_target, profile.weight_intensity),
        "reciprocity": (reciprocity, profile.reciprocity_target, profile.weight_reciprocity),
    }
    contributions = {
        name: round(weight * min(value / target, 1.0), 3) for name, (value, target, weight) in signals.items()
    }
    score = round(min(100.0, max(0.0, sum(contributions.values()))), 3)
    tier = tier_for(score, profile)
    explanation = {
        "signals": {
            name: {
                "value": round(value, 3),
                "target": target,
                "weight": weight,
                "contribution": contributions[name],
            }
            for name, (value, target, weight) in signals.items()
        },
        "engaged": engaged,
        "sellers_engaged": sorted(s for s, t in state.sellers.items() if t >= since),
        "events": state.recent,
        "interactions": state.interactions,
        "automated_excluded": state.automated,
    }
    return {
        "account_id": state.account_id,
        "as_of": datetime.fromtimestamp(now, UTC).date(),
        "score": score,
        "tier": tier,
        "depth": float(len(engaged)),
        "engaged_contacts": len(engaged),
        "explanation": orjson.dumps(explanation, option=orjson.OPT_SORT_KEYS).decode(),
        "model_version": profile.model_version,
        "version": state.settled,
    }
