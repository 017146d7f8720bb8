"""Title → seniority and department."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.scoring.titles import SENIORITIES, classify_title


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Chief Financial Officer", ("exec", "finance")),
        ("CTO", ("exec", "it")),
        ("Vice President, Sales", ("senior", "sales")),
        ("Director of IT", ("senior", "it")),
        ("Head of Procurement", ("senior", "procurement")),
        ("Operations Manager", ("manager", "operations")),
        ("Sr. Software Engineer", ("individual", "it")),
        ("Account Executive", ("individual", "sales")),
        ("General Counsel", ("", "legal")),
        ("", ("", "")),
        (None, ("", "")),
    ],
)
def test_common_titles(title: str | None, expected: tuple[str, str]) -> None:
    assert classify_title(title) == expected


@given(st.text(max_size=200))
def test_any_text_classifies_without_raising(title: str) -> None:
    seniority, department = classify_title(title)
    assert seniority in (*SENIORITIES, "")
    assert isinstance(department, str)
