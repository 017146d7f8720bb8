"""What a rejection may keep of a file: its structure, never its free text.

Mail headers (RFC 5322) and iCalendar (RFC 5545) are both ``NAME[;params]: value`` lines folded
onto following lines that start with a space or tab. Rejections keep the bytes for diagnosis,
so the fields that carry what people wrote (subjects, meeting titles, descriptions, locations)
are cut out here, folded continuations included.
"""

from __future__ import annotations

import re

MAIL_TEXT_FIELDS = frozenset({b"subject", b"thread-topic", b"comments", b"keywords"})
CALENDAR_TEXT_FIELDS = frozenset(
    {b"summary", b"description", b"location", b"comment", b"x-alt-desc", b"attach", b"contact", b"resources"}
)

_NAME = re.compile(rb"^([A-Za-z0-9-]+)[;:]")


def drop_fields(raw: bytes, names: frozenset[bytes]) -> bytes:
    """``raw`` without the lines (and their folded continuations) of the fields in ``names``."""
    kept: list[bytes] = []
    dropping = False
    for line in raw.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        match = _NAME.match(line)
        dropping = bool(match and match.group(1).lower() in names)
        if dropping:
            kept.append(match.group(1) + b": [removed]" + (b"\r\n" if line.endswith(b"\r\n") else b"\n"))  # type: ignore[union-attr]
        else:
            kept.append(line)
    return b"".join(kept)
