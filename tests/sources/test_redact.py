"""Rejections keep structure for diagnosis, never what people wrote."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.sources.calendar import parse_calendar
from streams.sources.dataset import Rejection
from streams.sources.mail import parse_message
from streams.sources.redact import CALENDAR_TEXT_FIELDS, MAIL_TEXT_FIELDS, drop_fields

TOKEN = "zq7secretTOKEN"


def test_a_rejected_message_keeps_headers_but_not_its_subject_or_body() -> None:
    raw = (
        f"From: a@x.com\r\nTo: b@y.com\r\nSubject: {TOKEN} and\r\n  more {TOKEN}\r\n"
        f"Date: not a date\r\n\r\nBody {TOKEN}\r\n"
    ).encode()
    rejected = parse_message(raw, "m.eml", keep_subject=False)
    assert isinstance(rejected, Rejection)
    assert TOKEN.encode() not in rejected.raw
    assert b"From: a@x.com" in rejected.raw and b"Subject: [removed]" in rejected.raw


def test_an_unparseable_calendar_keeps_no_titles_descriptions_or_locations() -> None:
    raw = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\n"
        f"SUMMARY:{TOKEN}\r\nDESCRIPTION;LANGUAGE=en:{TOKEN}\r\n line two {TOKEN}\r\n"
        f"LOCATION:{TOKEN}\r\nDTSTART:garbage\r\nEND:VEVENT\r\n"
    ).encode()
    results = parse_calendar(raw + b"\x00\xff not ical", "bad.ics")
    rejections = [r for r in results if isinstance(r, Rejection)]
    assert rejections
    for rejection in rejections:
        assert TOKEN.encode() not in rejection.raw


@given(
    st.lists(st.sampled_from(sorted(MAIL_TEXT_FIELDS | CALENDAR_TEXT_FIELDS)), min_size=1, max_size=4),
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
        ),
        max_size=3,
    ),
    st.sampled_from([b"\r\n", b"\n"]),
)
def test_dropped_fields_leave_nothing_of_their_values(
    names: list[bytes], continuations: list[str], newline: bytes
) -> None:
    lines = [b"KEEP:visible"]
    for name in names:
        lines.append(name.upper() + b":" + TOKEN.encode())
        lines.extend(b" " + c.encode() + TOKEN.encode() for c in continuations)
    raw = newline.join(lines) + newline
    kept = drop_fields(raw, MAIL_TEXT_FIELDS | CALENDAR_TEXT_FIELDS)
    assert TOKEN.encode() not in kept
    assert kept.startswith(b"KEEP:visible")
