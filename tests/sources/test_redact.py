"""Rejections keep structure for diagnosis, never what people wrote."""

from __future__ import annotations

import mailbox
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.sources.calendar import parse_calendar
from streams.sources.dataset import Rejection
from streams.sources.mail import parse_json_messages, parse_message, read_mail
from streams.sources.redact import (
    CALENDAR_STRUCTURE_FIELDS,
    MAIL_STRUCTURE_FIELDS,
    calendar_structure,
    mail_headers,
)

TOKEN = "zq7secretTOKEN"
ENDINGS = [b"\n", b"\r\n"]
free_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


def test_a_rejected_message_keeps_headers_but_not_its_subject_or_body() -> None:
    raw = (
        f"From: a@x.com\r\nTo: b@y.com\r\nSubject: {TOKEN} and\r\n  more {TOKEN}\r\n"
        f"Date: not a date\r\n\r\nBody {TOKEN}\r\n"
    ).encode()
    rejected = parse_message(raw, "m.eml", keep_subject=False)
    assert isinstance(rejected, Rejection)
    assert TOKEN.encode() not in rejected.raw
    assert b"From: a@x.com" in rejected.raw and b"Subject: [removed]" in rejected.raw


@given(
    st.lists(st.sampled_from(ENDINGS), min_size=3, max_size=3),
    st.sampled_from(ENDINGS),
    st.sampled_from(ENDINGS),
)
def test_the_header_block_ends_at_the_first_blank_line_whatever_the_line_endings(
    header_endings: list[bytes], first: bytes, second: bytes
) -> None:
    """LF headers with a CRLF CRLF body separator (the attack of issue 18), CRLF with LF, …"""
    lines = [b"Message-ID: <1@x.com>", b"From: a@x.com", b"Date: nonsense"]
    head = b"".join(line + end for line, end in zip(lines, header_endings, strict=True))
    body = f"To: {TOKEN}@x.com\r\nDate: {TOKEN}\r\n\r\nmore {TOKEN}\n".encode()
    raw = head[: -len(header_endings[-1])] + first + second + body
    kept = mail_headers(raw)
    assert TOKEN.encode() not in kept
    assert b"Message-ID: <1@x.com>" in kept and b"From: a@x.com" in kept


def test_no_blank_line_means_no_body_is_kept() -> None:
    raw = f"From: a@x.com\nDate: nonsense\nHello Bob, the price is {TOKEN}.\nRegards: {TOKEN}\n".encode()
    rejected = parse_message(raw, "m.eml")
    assert isinstance(rejected, Rejection)
    assert TOKEN.encode() not in rejected.raw and rejected.raw.startswith(b"From: a@x.com")


def test_an_mbox_body_after_an_inner_from_line_is_not_kept(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From MAILER-DAEMON Thu Jan  1 00:00:00 2025\n"
        b"Message-ID: <1@x.com>\nFrom: a@x.com\nDate: nonsense\nSubject: " + TOKEN.encode() + b"\n\n"
        b"First paragraph " + TOKEN.encode() + b"\n"
        b"From the desk of Ann: " + TOKEN.encode() + b"\nNote: " + TOKEN.encode() + b"\n"
    )
    assert len(mailbox.mbox(box)) == 2  # the inner From line split the body into a "message"
    results = list(read_mail([box]))
    assert results and all(isinstance(r, Rejection) for r in results)
    assert all(TOKEN.encode() not in r.raw for r in results)


def test_attachment_names_and_descriptions_are_removed() -> None:
    raw = (
        "Message-ID: <2@x.com>\r\nFrom: a@x.com\r\nDate: nonsense\r\n"
        f'Content-Type: application/pdf;\r\n name="{TOKEN}.pdf"\r\n'
        f'Content-Disposition: attachment; filename="{TOKEN}.pdf"\r\n'
        f"Content-Description: {TOKEN}\r\nX-Anything: {TOKEN}\r\nThread-Topic: {TOKEN}\r\n\r\nbody\r\n"
    ).encode()
    kept = mail_headers(raw)
    assert TOKEN.encode() not in kept
    assert b"Content-Type: application/pdf; [parameters removed]" in kept
    assert b"Content-Description: [removed]" in kept


def test_a_rejected_json_message_keeps_no_subject() -> None:
    headers = [{"name": "Subject", "value": TOKEN}, {"name": "From", "value": "a@x.com"}]
    gmail = orjson.dumps({"id": "1", "payload": {"headers": [*headers, {"name": "Date", "value": "never"}]}})
    (rejected,) = parse_json_messages(gmail, "g.json")
    assert isinstance(rejected, Rejection) and TOKEN.encode() not in rejected.raw + rejected.reason.encode()


def test_an_unparseable_calendar_keeps_no_free_text_and_its_reason_quotes_nothing() -> None:
    raw = (
        f"BEGIN:VCALENDAR\r\nX-WR-CALNAME:{TOKEN}\r\nX-WR-CALDESC:{TOKEN}\r\n line two {TOKEN}\r\n"
        f"BEGIN:VEVENT\r\nUID:1\r\nSUMMARY:{TOKEN}\r\nDESCRIPTION;LANGUAGE=en:{TOKEN}\r\n"
        f"LOCATION:{TOKEN}\r\nCATEGORIES:{TOKEN}\r\nDTSTART:garbage\r\nEND:VEVENT\r\n"
    ).encode()
    for broken in (raw + f"\x00\xff not ical {TOKEN}".encode(), f"{TOKEN} first bytes\r\n".encode() + raw):
        results = parse_calendar(broken, "bad.ics")
        rejections = [r for r in results if isinstance(r, Rejection)]
        assert rejections
        for rejection in rejections:
            assert TOKEN.encode() not in rejection.raw
            assert TOKEN not in rejection.reason and "first bytes" not in rejection.reason


def test_an_event_error_does_not_quote_its_value() -> None:
    raw = (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20250101T100000Z\r\n"
        f"ORGANIZER:mailto:a@x.com\r\nSEQUENCE:{TOKEN}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()
    (rejection,) = parse_calendar(raw, "seq.ics")
    assert isinstance(rejection, Rejection) and TOKEN not in rejection.reason


@given(
    st.lists(
        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True).filter(
            lambda n: n.lower().encode() not in MAIL_STRUCTURE_FIELDS | CALENDAR_STRUCTURE_FIELDS
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(free_text, max_size=3),
    st.sampled_from(ENDINGS),
    st.sampled_from([b":", b";X-PARAM=1:"]),
)
def test_every_field_not_on_the_allow_list_leaves_nothing_of_its_value(
    names: list[str], continuations: list[str], newline: bytes, separator: bytes
) -> None:
    lines = [b"UID:visible"]
    for name in names:
        lines.append(name.encode() + separator + TOKEN.encode())
        lines.extend(b" " + c.encode() + TOKEN.encode() for c in continuations)
    raw = newline.join(lines) + newline
    for kept in (calendar_structure(raw), mail_headers(raw.replace(b"UID:", b"Message-ID: "))):
        assert TOKEN.encode() not in kept
    assert calendar_structure(raw).startswith(b"UID:visible")


# --- keyed subject hashes (issue 18, row 3) ------------------------------------------------------


def hash_in_a_new_process(home: Path, subject: str, key: str = "") -> str:
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAPPORT_HOME": str(home), "RAPPORT_SUBJECT_KEY": key}
    code = f"from streams.sources.mail import subject_hash; print(subject_hash({subject!r}))"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_subject_hashes_are_keyed_by_a_secret_made_under_rapport_home(tmp_path: Path) -> None:
    import hashlib

    first = hash_in_a_new_process(tmp_path / "home", "Re: Pricing for Q3")
    key_file = tmp_path / "home" / "subject-key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 64
    # a guessed subject cannot be confirmed offline: the unkeyed hash is not what is stored
    assert first != hashlib.sha256(b"pricing for q3").hexdigest()[:32]
    # stable across runs in one home (so thread ids are), different in another home
    assert hash_in_a_new_process(tmp_path / "home", "pricing for Q3") == first
    assert hash_in_a_new_process(tmp_path / "other", "Re: Pricing for Q3") != first
    # or from the environment, where it wins over the file
    from_env = hash_in_a_new_process(tmp_path / "home", "Re: Pricing for Q3", key="k" * 32)
    assert from_env not in (first, "") and from_env == hash_in_a_new_process(
        tmp_path / "x", "pricing for q3", "k" * 32
    )
