"""What is kept of what people wrote: a rejection keeps structure, never free text.

Mail headers (RFC 5322) and iCalendar (RFC 5545) are both ``NAME[;params]: value`` lines folded
onto following lines that start with a space or tab. Rejections keep bytes for diagnosis, so only
the fields that carry structure (ids, dates, addresses, the media type) keep their values; every
other field (subjects, attachment names, descriptions, calendar names, any ``X-`` field) is cut
to ``NAME: [removed]``, folded continuations included. An allow-list, not a deny-list: a field
nobody thought of is removed by default.

A mail's header block ends at the first blank line whatever its line endings (LF, CRLF, or a
mix), or at the first line that is not a header (the body of a message without a blank line, an
mbox ``From `` line of the next message): nothing after it is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from streams.config import home_from_env

# Header fields a rejection keeps with their value: what identifies and routes a message.
MAIL_STRUCTURE_FIELDS = frozenset(
    {
        b"message-id",
        b"date",
        b"from",
        b"sender",
        b"to",
        b"cc",
        b"bcc",
        b"reply-to",
        b"in-reply-to",
        b"references",
        b"mime-version",
        b"return-path",
        b"auto-submitted",
        b"precedence",
        b"list-id",
    }
)
# Kept without their parameters (``name=``/``filename=`` carry attachment names).
MAIL_MEDIA_FIELDS = frozenset({b"content-type", b"content-transfer-encoding"})
CALENDAR_STRUCTURE_FIELDS = frozenset(
    {
        b"begin",
        b"end",
        b"version",
        b"prodid",
        b"method",
        b"calscale",
        b"uid",
        b"dtstart",
        b"dtend",
        b"dtstamp",
        b"duration",
        b"created",
        b"last-modified",
        b"sequence",
        b"status",
        b"transp",
        b"class",
        b"organizer",
        b"attendee",
        b"rrule",
        b"rdate",
        b"exdate",
        b"recurrence-id",
        b"tzid",
        b"tzoffsetfrom",
        b"tzoffsetto",
        b"tzname",
    }
)

MAX_KEPT = 65536
_FIELD = re.compile(rb"^([!-9;-~]+?)([;:])")  # a field name: printable ASCII but ':' (RFC 5322 2.2)
_BLANK_LINE = re.compile(rb"\n\r?\n")  # LF LF, CRLF CRLF, LF CRLF and CRLF LF all end a header block
_REMOVED = b": [removed]"


def _kept_line(line: bytes, name: bytes, keep: frozenset[bytes], media: frozenset[bytes]) -> bytes:
    end = b"\r\n" if line.endswith(b"\r\n") else b"\n"
    lowered = name.lower()
    if lowered in keep:
        return line
    if lowered in media:
        value = line[len(name) + 1 :].split(b";", 1)[0].strip()
        return (
            name + b": " + value + (b"; [parameters removed]" if b";" in line[len(name) + 1 :] else b"") + end
        )
    return name + _REMOVED + end


def structure_only(
    raw: bytes, keep: frozenset[bytes], media: frozenset[bytes] = frozenset(), stop_at_other: bool = True
) -> bytes:
    """The field lines of ``raw`` with only the ``keep`` fields' values (and ``media`` fields'
    first value). With ``stop_at_other``, the first line that is not a field or a folded
    continuation ends what is kept (a body); without it, such lines are dropped one by one."""
    kept: list[bytes] = []
    keeping = False  # whether the last field's continuations are kept
    for number, line in enumerate(raw[: MAX_KEPT * 4].splitlines(keepends=True)):
        if line[:1] in (b" ", b"\t") and kept:
            if keeping:
                kept.append(line)
            continue
        if number == 0 and line.startswith(b"From "):
            continue  # an mbox envelope line
        match = _FIELD.match(line)
        if match is None:
            if stop_at_other:
                break
            keeping = False
            continue
        name = match.group(1)
        out = _kept_line(line, name, keep, media)
        keeping = out is line and name.lower() in keep
        kept.append(out)
    return b"".join(kept)[:MAX_KEPT]


def mail_headers(raw: bytes) -> bytes:
    """What a rejection keeps of a message: its structural headers, never a body or free text."""
    blank = _BLANK_LINE.search(raw)
    head = raw[: blank.start() + 1] if blank else raw
    if raw.startswith((b"\n", b"\r\n")):
        head = b""
    return structure_only(head, MAIL_STRUCTURE_FIELDS, MAIL_MEDIA_FIELDS)


def calendar_structure(raw: bytes) -> bytes:
    """What a rejection keeps of a calendar: its structural properties, never titles, descriptions,
    locations or calendar names (``X-WR-CALDESC``)."""
    return structure_only(raw, CALENDAR_STRUCTURE_FIELDS, stop_at_other=False)


SUBJECT_KEY_ENV = "RAPPORT_SUBJECT_KEY"
SUBJECT_KEY_FILE = "subject-key"


@cache
def _key_in(path: Path) -> bytes:
    """The key stored at ``path``, created (random, mode 0600) if there is none yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_hex(32).encode())
    key = path.read_bytes().strip()
    if not key:
        raise ValueError(f"{path} is empty: delete it to have a new subject key made")
    return key


def subject_key(env: Mapping[str, str] | None = None) -> bytes:
    """The secret that keys subject hashes: ``RAPPORT_SUBJECT_KEY``, else the file
    ``$RAPPORT_HOME/subject-key`` (made on first use, readable by its owner only). Without a key,
    anyone holding a warehouse could hash a guessed subject and look for it in ``thread_id``; with
    one, the same subject still gives the same hash in every run of one home, live or replay."""
    env = os.environ if env is None else env
    given = env.get(SUBJECT_KEY_ENV, "").strip()
    return given.encode() if given else _key_in(home_from_env(env) / SUBJECT_KEY_FILE)


def keyed_hash(text: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of ``text`` under the subject key (32 hex digits)."""
    return hmac.new(key or subject_key(), text.encode(), hashlib.sha256).hexdigest()[:32]
