"""The scoring profile file: complete defaults, overrides, and errors that say what to fix."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from streams.scoring.profile import DEFAULT_FILE, SECTIONS, ProfileError, load_profile


def test_the_default_file_sets_every_parameter() -> None:
    data = tomllib.loads(DEFAULT_FILE.read_text())
    for name, section in SECTIONS.items():
        assert set(data[name]) == {f.name for f in fields(section)}, name


def test_an_override_keeps_unset_keys_and_carries_its_model_version(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('model_version = "team-2"\n[alerts]\ncooldown_days = 3\n')
    profile = load_profile(path)
    assert profile.model_version == "team-2"
    assert profile.alerts.cooldown_days == 3
    assert profile.alerts.unanswered_streak == load_profile().alerts.unanswered_streak


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model_version = "x"\n[health]\nwieght_intensity = 3\n', "unknown key(s) wieght_intensity"),
        ('model_version = "x"\n[halth]\n', "unknown section(s) halth"),
        ("[health]\nweight_intensity = 3\n", "set model_version"),
        ('model_version = "x"\n[health]\nweight_intensity = "high"\n', "expected a number"),
        ("model_version = \n", "not valid TOML"),
    ],
)
def test_a_bad_profile_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=r"bad\.toml") as raised:
        load_profile(path)
    assert message in str(raised.value)


def test_a_missing_profile_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="RAPPORT_SCORING_PROFILE"):
        load_profile(tmp_path / "nope.toml")
