"""Job title → (seniority, department): the depth model counts coverage of both.

Rule-based on purpose: a title is short, the vocabulary is small, and a rule can be read and
argued with. Unknown parts come back as ``""`` and count for nothing.
"""

from __future__ import annotations

import re

SENIORITIES = ("exec", "senior", "manager", "individual")

_WORDS = re.compile(r"[a-z]+")

# Checked in order; the first level whose words or phrases appear wins.
_SENIORITY: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "exec",
        (
            "chief",
            "ceo",
            "cfo",
            "cto",
            "coo",
            "cio",
            "ciso",
            "cmo",
            "cro",
            "president",
            "founder",
            "owner",
            "partner",
            "principal",
            "evp",
            "svp",
            "managing director",
            "general manager",
        ),
    ),
    ("senior", ("vp", "vice president", "head", "director", "avp")),
    ("manager", ("manager", "lead", "supervisor", "team lead", "controller")),
    (
        "individual",
        (
            "engineer",
            "analyst",
            "specialist",
            "associate",
            "coordinator",
            "assistant",
            "consultant",
            "administrator",
            "representative",
            "executive",
            "accountant",
            "developer",
            "buyer",
            "officer",
            "agent",
            "architect",
            "scientist",
            "designer",
            "planner",
            "clerk",
            "trader",
        ),
    ),
)

_DEPARTMENT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("executive", ("ceo", "president", "founder", "owner", "managing director", "general manager", "coo")),
    (
        "finance",
        ("cfo", "finance", "financial", "accounting", "accountant", "controller", "treasury", "trader"),
    ),
    (
        "it",
        (
            "cto",
            "cio",
            "ciso",
            "it",
            "technology",
            "information",
            "engineering",
            "engineer",
            "developer",
            "software",
            "data",
            "security",
            "architect",
            "infrastructure",
        ),
    ),
    ("procurement", ("procurement", "purchasing", "sourcing", "buyer", "supply", "vendor")),
    ("operations", ("operations", "ops", "logistics", "facilities", "production", "planner")),
    ("sales", ("sales", "cro", "account", "business development", "commercial", "revenue")),
    ("marketing", ("marketing", "cmo", "brand", "communications", "growth")),
    ("legal", ("legal", "counsel", "compliance", "attorney", "lawyer", "contracts")),
    ("hr", ("hr", "human resources", "people", "talent", "recruiting")),
)


def _has(text: str, words: set[str], phrases: tuple[str, ...]) -> bool:
    return any((p in text) if " " in p else (p in words) for p in phrases)


def classify_title(title: str | None) -> tuple[str, str]:
    """``(seniority, department)`` of a job title; ``""`` where the title does not say."""
    if not title:
        return "", ""
    text = " ".join(_WORDS.findall(title.lower())).replace("vice president", "vp")
    words = set(text.split())
    seniority = next((level for level, cues in _SENIORITY if _has(text, words, cues)), "")
    department = next((dept for dept, cues in _DEPARTMENT if _has(text, words, cues)), "")
    return seniority, department
