"""The scoring profile: every weight, window and threshold, read from a versioned TOML file.

``default_profile.toml`` beside this module holds the defaults; a user file (``RAPPORT_SCORING_PROFILE``)
overrides any subset of keys. Every output row carries ``model_version`` so scores of different
profiles never mix unnoticed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, Self

DAY = 86400.0
DEFAULT_FILE = Path(__file__).with_name("default_profile.toml")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, key and fix."""


@dataclass(frozen=True)
class Section:
    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> Self:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        values = {}
        for name, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ProfileError(f"{where}.{name}: expected a number, got {value!r}")
            values[name] = float(value)
        return cls(**values)


@dataclass(frozen=True)
class Health(Section):
    engaged_window_days: float = 0
    intensity_half_life_days: float = 0
    weight_engaged_contacts: float = 0
    target_engaged_contacts: float = 1
    weight_seniority_coverage: float = 0
    target_seniority_coverage: float = 1
    weight_function_coverage: float = 0
    target_function_coverage: float = 1
    weight_reciprocity: float = 0
    target_reciprocity: float = 1
    weight_responsiveness: float = 0
    target_responsiveness: float = 1
    weight_intensity: float = 0
    target_intensity: float = 1
    weight_seller_coverage: float = 0
    target_seller_coverage: float = 1
    weight_recent_value: float = 0
    target_recent_value: float = 1
    tier_healthy: float = 0
    tier_watch: float = 0
    tier_at_risk: float = 0
    trend_days: float = 0


@dataclass(frozen=True)
class Depth(Section):
    target_engaged_contacts: float = 1
    weight_engaged_contacts: float = 0
    weight_seniority_coverage: float = 0
    weight_function_coverage: float = 0
    weight_seller_coverage: float = 0


@dataclass(frozen=True)
class Preparedness(Section):
    very_prepared: float = 0
    weight_agenda: float = 0
    agenda_min_description: float = 0
    weight_crm_prep: float = 0
    crm_prep_days: float = 0
    weight_known_attendees: float = 0
    weight_follow_up: float = 0
    follow_up_days: float = 0
    weight_internal_prep: float = 0
    internal_prep_days: float = 0
    weight_lead_time: float = 0
    lead_time_full_days: float = 1


@dataclass(frozen=True)
class Value(Section):
    response_window_days: float = 0
    base_outbound: float = 0
    base_inbound: float = 0
    replied: float = 0
    replied_fast: float = 0
    new_colleagues: float = 0
    accepted: float = 0
    senior_attendees: float = 0
    follow_on_meeting: float = 0
    stage_advanced: float = 0
    cancelled: float = 0
    declined: float = 0


@dataclass(frozen=True)
class Alerts(Section):
    cooldown_days: float = 0
    health_drop_points: float = 0
    silent_cadence_multiple: float = 0
    silent_min_days: float = 0
    silent_min_replies: float = 0
    silent_min_unanswered: float = 0
    silent_key_share: float = 0
    tier_drop_margin: float = 0
    quiet_cadence_multiple: float = 0
    quiet_min_days: float = 0
    quiet_max_days: float = 0
    silent_max_health: float = 0
    engagement_recent_days: float = 1
    engagement_baseline_days: float = 1
    engagement_drop_ratio: float = 0
    engagement_recover_ratio: float = 0
    engagement_drop_days: float = 0
    engagement_min_per_week: float = 0
    unanswered_streak: float = 0
    cancellations: float = 0
    cancellation_days: float = 0
    owner_grace_days: float = 0
    evidence_ids: float = 0


SECTIONS: dict[str, type[Section]] = {
    "health": Health,
    "depth": Depth,
    "preparedness": Preparedness,
    "value": Value,
    "alerts": Alerts,
}


@dataclass(frozen=True)
class Profile:
    model_version: str
    health: Health
    depth: Depth
    preparedness: Preparedness
    value: Value
    alerts: Alerts

    @property
    def evidence_ids(self) -> int:
        return int(self.alerts.evidence_ids)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"scoring profile {path} does not exist; fix RAPPORT_SCORING_PROFILE") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"scoring profile {path} is not valid TOML: {exc}") from None


def load_profile(path: Path | str | None = None) -> Profile:
    """The default profile, with the keys of ``path`` (if given) laid over it."""
    data = _read(DEFAULT_FILE)
    if path is not None:
        override = _read(Path(path))
        unknown = sorted(set(override) - set(SECTIONS) - {"model_version"})
        if unknown:
            raise ProfileError(
                f"{path}: unknown section(s) {', '.join(unknown)}; "
                f"known: model_version, {', '.join(SECTIONS)}"
            )
        if "model_version" not in override:
            raise ProfileError(
                f"{path}: set model_version (e.g. 'rapport-1.0-mine') so its scores are told apart"
            )
        for name in SECTIONS:
            if not isinstance(override.get(name, {}), dict):
                raise ProfileError(f"{path}: [{name}] must be a table")
            data[name] = {**data[name], **override.get(name, {})}
        data["model_version"] = str(override["model_version"])
    where = str(path or DEFAULT_FILE)
    sections = {
        name: cls.from_table(data.get(name, {}), f"{where} [{name}]") for name, cls in SECTIONS.items()
    }
    return Profile(model_version=str(data["model_version"]), **sections)  # type: ignore[arg-type]


@cache
def default_profile() -> Profile:
    return load_profile()


DEFAULT = default_profile()
