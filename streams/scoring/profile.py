"""Scoring parameters. Versioned: every output row carries ``model_version``."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class Profile:
    """Weights, windows and thresholds of the account-health model."""

    model_version: str = "health-0.1"
    engaged_window_s: float = 90 * DAY
    intensity_half_life_s: float = 14 * DAY
    engaged_target: float = 4.0
    intensity_target: float = 6.0
    reciprocity_target: float = 0.4
    weight_engaged: float = 40.0
    weight_intensity: float = 30.0
    weight_reciprocity: float = 30.0
    tier_healthy: float = 70.0
    tier_watch: float = 50.0
    tier_at_risk: float = 30.0
    evidence_ids: int = 5


DEFAULT = Profile()
