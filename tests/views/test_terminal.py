"""Whatever the warehouse holds is printed as text: rich markup literally, no escape sequences
or control characters, in every view and both terminal formats (hypothesis over every field)."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from streams.views.accounts import render_account_detail, render_accounts
from streams.views.alerts import render_alerts
from streams.views.explain import render_account, render_meeting
from streams.views.terminal import CONTROL, ESCAPE_SEQUENCE, Column, Output, column_widths, fitting, text

# Rich markup, escape sequences, C0/C1 controls, a bidi override and some non-ASCII letters.
HOSTILE = st.lists(
    st.sampled_from(
        [
            *"[]/<>@ab =:#",
            *("[/]", "[bold]", "[link=x]", "\x1b[31m", "\x1b]0;title\x07", "\x1b", "\x07"),
            *("\x00", "\x9b", "\n", "\t", "\r", "\u202e", "é", "漢"),
        ]
    ),
    min_size=1,
    max_size=12,
).map("".join)


def account_view(s: str) -> dict[str, Any]:
    signal = {"value": 0.5, "target": 0.7, "weight": 20.0, "contribution": 10.0, "change": 1.0}
    return {
        "account_id": s,
        "as_of": "2026-06-30",
        "score": 50.0,
        "tier": s,
        "trend_30d": -2.0,
        "depth": 40.0,
        "engaged_contacts": 2,
        "top_reason": f"{s}: 0.1 of 0.7",
        "model_version": s,
        "signals": {s: signal, "responsiveness": signal},
        "engaged": [s],
        "since": {"date": "2026-01-01", "score_then": 60.0, "tier_then": s, "interactions_after": {}},
        "evidence": [
            {
                "occurred_at": "2026-06-01T10:00:00",
                "channel": s,
                "direction": s,
                "kind": s,
                "status": s,
                "sellers": [s],
                "buyers": [s],
                "interaction_id": s,
                "source_event_id": s,
            }
        ],
        "alerts": [
            {
                "raised_at": "2026-06-01T10:00:00",
                "kind": s,
                "severity": s,
                "status": s,
                "reason": s,
                "subject": s,
                "ended_at": "2026-06-02T00:00:00",
            }
        ],
        "name": s,
        "owner": s,
        "contacts": [
            {
                "seniority": s,
                "department": s,
                "email": s,
                "active": 0,
                "title": s,
                "interactions": 3,
                "last_interaction": "2026-06-01",
                "cadence_days": 2.0,
            }
        ],
        "meetings": [
            {
                "meeting_id": s,
                "starts_at": "2026-06-01T10:00:00",
                "seller": s,
                "status": s,
                "score": 50.0,
                "tier": s,
                "missing": [s],
            }
        ],
        "value_moments": [
            {
                "occurred_at": "2026-06-01T10:00:00",
                "channel": s,
                "direction": s,
                "seller": s,
                "buyers": [s],
                "score": 40.0,
                "outcomes": [s],
            }
        ],
    }


def meeting_view(s: str) -> dict[str, Any]:
    return {
        "meeting_id": s,
        "account_id": s,
        "starts_at": "2026-06-01T10:00:00",
        "seller": s,
        "score": 50.0,
        "tier": s,
        "status": s,
        "model_version": s,
        "signals": {
            s: {"applicable": True, "share": 0.5, "weight": 10.0, "contribution": 5.0, "events": [s]}
        },
        "missing": [s],
        "evidence": [
            {
                "signal": s,
                "occurred_at": "2026-06-01T10:00:00",
                "channel": s,
                "direction": s,
                "kind": s,
                "status": s,
                "sellers": [s],
                "buyers": [s],
            }
        ],
    }


def listed_account(s: str) -> dict[str, Any]:
    return {
        "account_id": s,
        "name": s,
        "owner": s,
        "score": None,
        "tier": s,
        "trend_30d": None,
        "depth": None,
        "engaged_contacts": None,
        "last_touch": None,
        "open_alerts": 0,
    }


def listed_alert(s: str) -> dict[str, Any]:
    return {
        "raised_at": "2026-06-01T10:00:00",
        "account_id": s,
        "kind": s,
        "severity": s,
        "status": s,
        "ended_at": None,
        "owner": s,
        "reason": s,
        "subject": s,
    }


VIEWS = {
    "account": lambda s, out: render_account_detail(account_view(s), out),
    "explain account": lambda s, out: render_account(account_view(s), out),
    "explain meeting": lambda s, out: render_meeting(meeting_view(s), out),
    "accounts": lambda s, out: render_accounts([listed_account(s)], out),
    "alerts": lambda s, out: render_alerts([listed_alert(s)], out),
    "warehouse query": lambda s, out: out.table([Column(s), Column("n")], [[s, 1], [None, s]]),
}


@settings(max_examples=60, deadline=None)
@given(HOSTILE, st.sampled_from(sorted(VIEWS)), st.sampled_from(["table", "tsv"]))
def test_every_text_field_of_every_view_prints_literally(value: str, view: str, fmt: str) -> None:
    file = io.StringIO()
    out = Output(fmt, wide=True, console=Console(file=file, width=80))  # type: ignore[arg-type]
    VIEWS[view](value, out)
    printed = file.getvalue()
    allowed = "\n\t" if fmt == "tsv" else "\n"
    assert not [c for c in printed if CONTROL.fullmatch(c) and c not in allowed], (view, printed)
    shown = " ".join(text(value).split())
    if shown:
        assert shown in " ".join(printed.split()), (view, shown, printed)


@given(HOSTILE)
def test_text_leaves_no_escape_sequence_or_control_character(value: str) -> None:
    cleaned = text(value)
    assert not CONTROL.search(cleaned) and not ESCAPE_SEQUENCE.search(cleaned)
    assert text(cleaned) == cleaned
    if "\x1b" not in value and not CONTROL.search(value):
        assert cleaned == value  # markup and other text are kept as the letters they are


@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(0, 40), st.booleans()), min_size=1, max_size=8),
    st.integers(20, 200),
)
def test_whole_columns_keep_their_width_when_anything_fits(
    spec: list[tuple[int, int, bool]], width: int
) -> None:
    columns = [
        Column(f"c{i}", whole=whole, drop=0 if whole else i + 1) for i, (_, _, whole) in enumerate(spec)
    ]
    rows = [["x" * lo + " " + "y" * extra for lo, extra, _ in spec]]
    shown = fitting(columns, rows, width)
    assert all(i in shown for i, c in enumerate(columns) if c.whole)  # ids are never dropped
    minimum = [
        len(rows[0][i]) if columns[i].whole else max(len(w) for w in rows[0][i].split()) for i in shown
    ]
    maximum = [len(rows[0][i]) for i in shown]
    available = width - 3 * len(shown) - 1
    widths = column_widths(minimum, maximum, available)
    assert all(lo <= w <= hi for lo, w, hi in zip(minimum, widths, maximum, strict=True))
    if sum(minimum) <= available:
        assert sum(widths) <= available


@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(0, 40), st.booleans()), min_size=1, max_size=6),
    st.integers(20, 200),
)
def test_a_long_word_folds_before_an_id_does(spec: list[tuple[int, int, bool]], width: int) -> None:
    """When the words do not fit whole (an alert's reason naming a long address), text columns
    fold down to their floor; an id column keeps its full width (seen: `harborlabs005.co`)."""
    minimum = [lo + extra if whole else max(lo, extra) for lo, extra, whole in spec]
    maximum = [lo + extra + 1 for lo, extra, _ in spec]
    floor = [m if whole else min(m, 8) for m, (_, _, whole) in zip(minimum, spec, strict=True)]
    available = width - 3 * len(spec) - 1
    widths = column_widths(minimum, maximum, available, floor)
    assert all(f <= w <= hi for f, w, hi in zip(floor, widths, maximum, strict=True))
    assert all(w >= m for w, m, (_, _, whole) in zip(widths, minimum, spec, strict=True) if whole)
    if sum(floor) <= available:
        assert sum(widths) <= available
