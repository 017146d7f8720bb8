"""Calendar files in: ``.ics`` events → ``raw_meeting/1`` (one record per UID and SEQUENCE).

Kept: organizer, attendees with PARTSTAT and role, start/end, status, created, sequence, and the
description's length as the agenda signal (the description itself is never kept). All-day dates
start at midnight UTC. An event that cannot be a meeting (no start, no organizer, unreadable)
becomes a :class:`Rejection` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import icalendar

from streams.contracts import ContractError, format_time, make
from streams.sources.dataset import Rejection, SourceRecord

SOURCE = "calendar"
PARTSTATS = {"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION", "DELEGATED"}


def _address(value: Any) -> str | None:
    text = str(value or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text if text.count("@") == 1 and " " not in text else None


def _moment(value: Any) -> datetime | None:
    moment = getattr(value, "dt", None)
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(moment, date):
        return datetime.combine(moment, time.min, UTC)
    return None


def _attendees(event: Any) -> list[dict[str, str]]:
    values = event.get("ATTENDEE") or []
    if not isinstance(values, list):
        values = [values]
    found = []
    for value in values:
        address = _address(value)
        if address is None:
            continue
        params = getattr(value, "params", {})
        partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        found.append(
            {
                "email": address,
                "partstat": partstat if partstat in PARTSTATS else "NEEDS-ACTION",
                "role": str(params.get("ROLE", "REQ-PARTICIPANT"))[:50],
            }
        )
    return found


def _record(event: Any, origin: str) -> SourceRecord:
    uid = str(event.get("UID") or "").strip()
    if not uid:
        raise ContractError("event without UID")
    start = _moment(event.get("DTSTART"))
    if start is None:
        raise ContractError(f"{uid}: no DTSTART")
    end = _moment(event.get("DTEND")) or start + timedelta(hours=1)
    attendees = _attendees(event)
    organizer = _address(event.get("ORGANIZER")) or (attendees[0]["email"] if len(attendees) == 1 else None)
    if organizer is None:
        raise ContractError(f"{uid}: no ORGANIZER ({len(attendees)} attendees)")
    status = str(event.get("STATUS") or "CONFIRMED").upper()
    created = _moment(event.get("CREATED"))
    sequence = int(event.get("SEQUENCE") or 0)
    payload = {
        "uid": uid,
        "sequence": max(0, sequence),
        "organizer": organizer,
        "attendees": attendees,
        "start": format_time(start),
        "end": format_time(end),
        "status": status if status in {"CONFIRMED", "TENTATIVE", "CANCELLED"} else "CONFIRMED",
        "created": format_time(created) if created else None,
        "description_length": len(str(event.get("DESCRIPTION") or "")),
        "title": None,
    }
    if payload["created"] is None:
        del payload["created"]
    envelope = make("raw_meeting/1", f"{uid}:{payload['sequence']}", SOURCE, payload["start"], payload)
    return SourceRecord("meeting", envelope, envelope.to_bytes())


def parse_calendar(raw: bytes, origin: str) -> list[SourceRecord | Rejection]:
    """Every VEVENT of one .ics file as a record or a rejection; never raises."""
    try:
        calendar = icalendar.Calendar.from_ical(raw)
        events = list(calendar.walk("VEVENT"))
    except Exception as exc:  # icalendar raises many types on hostile input
        return [Rejection(origin, f"unparseable calendar: {str(exc)[:300]}", raw[:65536])]
    results: list[SourceRecord | Rejection] = []
    for n, event in enumerate(events):
        try:
            results.append(_record(event, origin))
        except (ContractError, ValueError, TypeError, AttributeError) as exc:
            results.append(Rejection(f"{origin}#{n}", str(exc), str(event.get("UID") or "").encode()))
    return results


def read_calendars(path: Path) -> Iterator[SourceRecord | Rejection]:
    files = sorted(path.rglob("*.ics")) if path.is_dir() else [path]
    for file in files:
        yield from parse_calendar(file.read_bytes(), str(file))
