"""Calendar files in: ``.ics`` events, and Microsoft Graph or Google Calendar event JSON →
``raw_meeting/1`` (one record per UID and SEQUENCE).

Kept: organizer, attendees with PARTSTAT and role, start/end, status, created, sequence, and the
description's length as the agenda signal (the description itself is never kept). All-day dates
start at midnight UTC. An event that cannot be a meeting (no start, no organizer, unreadable)
becomes a :class:`Rejection` with the reason.
"""

from __future__ import annotations

import datetime as datetime_module
import re
import types
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dateutil.rrule
import icalendar
from dateutil.rrule import HOURLY, rrule, rrulestr

from streams.contracts import ContractError, format_time, make, parse_time, without_controls
from streams.sources.dataset import Rejection, SourceRecord, json_objects, read_whole, reason_of
from streams.sources.redact import calendar_structure

SOURCE = "calendar"
PARTSTATS = {"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION", "DELEGATED"}


def _address(value: Any) -> str | None:
    text = without_controls(str(value or "")).strip()
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


RECURRENCE_HORIZON = timedelta(days=366)
MAX_OCCURRENCES = 200


class _EndOfTime:
    """The ``datetime`` module as dateutil's rrule iteration sees it, with ``MAXYEAR`` moved to the
    end of the recurrence horizon."""

    def __init__(self, last_year: int) -> None:
        self.MAXYEAR = last_year

    def __getattr__(self, name: str) -> Any:
        return getattr(datetime_module, name)


def _bounded(rule: rrule, last_year: int) -> Iterator[datetime]:
    """The rule's occurrences, iterating periods only up to ``last_year``.

    dateutil stops a rule at UNTIL or COUNT only when an occurrence passes them, and otherwise
    iterates every period up to year 9999: ``FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30`` matches nothing
    and took 8.6 s per event here (issue 18, row 6). Its iteration's only other stop is
    ``datetime.MAXYEAR``, so the same iteration runs with that year moved to the horizon: at most
    two calendar years of periods (0.01 s for that rule).
    """
    iterate = types.FunctionType(
        rrule._iter.__code__, {**vars(dateutil.rrule), "datetime": _EndOfTime(last_year)}, "_iter"
    )
    return iterate(rule)  # type: ignore[no-any-return]


def occurrences(event: Any, start: datetime) -> list[datetime]:
    """Starts of a recurring event's occurrences within a year of its first (at most 200),
    found in a bounded number of iterations (:func:`_bounded`)."""
    rule = event.get("RRULE")
    if not rule:
        return [start]
    text = rule.to_ical().decode() if hasattr(rule, "to_ical") else str(rule)
    text = re.sub(r"UNTIL=(\d{8})(;|$)", r"UNTIL=\1T235959Z\2", text)  # all-day UNTIL against aware start
    parsed = rrulestr(text, dtstart=start, ignoretz=False)
    if not isinstance(parsed, rrule):
        raise ContractError("RRULE is not a single recurrence rule")
    if parsed._freq > HOURLY:
        raise ContractError("RRULE recurs more often than hourly")
    starts = _bounded(parsed, (start + RECURRENCE_HORIZON).year)
    found: list[datetime] = []
    for moment in starts:
        if moment > start + RECURRENCE_HORIZON or len(found) >= MAX_OCCURRENCES:
            break
        found.append(moment)
    excluded = set()
    for exdate in event.get("EXDATE") if isinstance(event.get("EXDATE"), list) else [event.get("EXDATE")]:
        for value in getattr(exdate, "dts", []):
            skipped = _moment(value)
            if skipped:
                excluded.add(skipped)
    return [m for m in found if m not in excluded] or [start]


def _records(event: Any, origin: str) -> list[SourceRecord]:
    """The records of one VEVENT: one per occurrence (recurring events are expanded)."""
    base = _record(event, origin)
    start = parse_time(base.envelope.payload["start"])
    starts = occurrences(event, start)
    if starts == [start]:
        return [base]
    duration = parse_time(base.envelope.payload["end"]) - start
    records = []
    for moment in starts:
        payload = dict(base.envelope.payload)
        payload["uid"] = f"{payload['uid']}/{format_time(moment)}"
        payload["start"], payload["end"] = format_time(moment), format_time(moment + duration)
        envelope = make(
            "raw_meeting/1", f"{payload['uid']}:{payload['sequence']}", SOURCE, payload["start"], payload
        )
        records.append(SourceRecord("meeting", envelope, envelope.to_bytes()))
    return records


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
    envelope = make("raw_meeting/1", f"{uid}:{payload['sequence']}", SOURCE, format_time(start), payload)
    return SourceRecord("meeting", envelope, envelope.to_bytes())


def parse_calendar(raw: bytes, origin: str) -> list[SourceRecord | Rejection]:
    """Every VEVENT of one .ics file as a record or a rejection; never raises."""
    try:
        calendar = icalendar.Calendar.from_ical(raw)
        events = list(calendar.walk("VEVENT"))
    except Exception as exc:  # icalendar raises many types on hostile input
        # icalendar's messages quote the offending line: only the error's type is kept
        return [Rejection(origin, f"unparseable calendar ({type(exc).__name__})", calendar_structure(raw))]
    results: list[SourceRecord | Rejection] = []
    for n, event in enumerate(events):
        try:
            results.extend(_records(event, origin))
        except (ContractError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            results.append(
                Rejection(
                    f"{origin}#{n}", reason_of(exc, "unreadable event"), str(event.get("UID") or "").encode()
                )
            )
    return results


GRAPH_RESPONSES = {
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentativelyaccepted": "TENTATIVE",
    "organizer": "ACCEPTED",
}
GOOGLE_RESPONSES = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE"}


def _json_moment(value: Any) -> datetime | None:
    """Graph ``{dateTime, timeZone}`` (UTC assumed unless an offset is given) or Google
    ``{dateTime}`` / ``{date}``."""
    if not isinstance(value, dict):
        return None
    if value.get("date"):
        return datetime.combine(date.fromisoformat(str(value["date"])), time.min, UTC)
    text = str(value.get("dateTime") or "")
    if not text:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _json_event(event: dict[str, Any]) -> dict[str, Any]:
    """One Graph or Google event → the fields of ``raw_meeting/1``."""
    if "iCalUId" in event or "isCancelled" in event:  # Microsoft Graph
        attendees = [
            {
                "email": str((a.get("emailAddress") or {}).get("address") or ""),
                "partstat": GRAPH_RESPONSES.get(
                    str((a.get("status") or {}).get("response", "")).lower(), "NEEDS-ACTION"
                ),
                "role": "REQ-PARTICIPANT" if a.get("type", "required") == "required" else "OPT-PARTICIPANT",
            }
            for a in event.get("attendees") or []
        ]
        modified = event.get("lastModifiedDateTime")
        return {
            "uid": event.get("iCalUId") or event.get("id"),
            "sequence": int(_json_moment({"dateTime": modified}).timestamp()) if modified else 0,  # type: ignore[union-attr]
            "organizer": str(((event.get("organizer") or {}).get("emailAddress") or {}).get("address") or ""),
            "attendees": attendees,
            "start": _json_moment(event.get("start")),
            "end": _json_moment(event.get("end")),
            "status": "CANCELLED" if event.get("isCancelled") else "CONFIRMED",
            "created": _json_moment({"dateTime": event["createdDateTime"]})
            if event.get("createdDateTime")
            else None,
            "description_length": len(str((event.get("body") or {}).get("content") or "")),
        }
    attendees = [
        {
            "email": str(a.get("email") or ""),
            "partstat": GOOGLE_RESPONSES.get(str(a.get("responseStatus", "")).lower(), "NEEDS-ACTION"),
            "role": "OPT-PARTICIPANT" if a.get("optional") else "REQ-PARTICIPANT",
        }
        for a in event.get("attendees") or []
    ]
    return {
        "uid": event.get("iCalUID") or event.get("id"),
        "sequence": int(event.get("sequence") or 0),
        "organizer": str((event.get("organizer") or {}).get("email") or ""),
        "attendees": attendees,
        "start": _json_moment(event.get("start")),
        "end": _json_moment(event.get("end")),
        "status": str(event.get("status") or "confirmed").upper(),
        "created": _json_moment({"dateTime": event["created"]}) if event.get("created") else None,
        "description_length": len(str(event.get("description") or "")),
    }


def parse_calendar_json(raw: bytes, origin: str) -> list[SourceRecord | Rejection]:
    """A JSON file of one event, a list, or ``{"value"|"items": [...]}``; never raises."""
    objects = json_objects(raw, origin, ("value", "items"))
    if isinstance(objects, Rejection):
        return [objects]
    results: list[SourceRecord | Rejection] = []
    for where, event in objects:
        try:
            if not isinstance(event, dict):
                raise ContractError("expected a JSON object per event")
            fields = _json_event(event)
            if not fields["uid"] or fields["start"] is None:
                raise ContractError(f"{fields['uid'] or 'event without id'}: no start")
            start, end, created = fields["start"], fields["end"] or fields["start"], fields["created"]
            payload = {
                **fields,
                "uid": str(fields["uid"]),
                "attendees": [
                    {**a, "email": without_controls(a["email"])}
                    for a in fields["attendees"]
                    if without_controls(a["email"]).count("@") == 1
                ],
                "organizer": without_controls(fields["organizer"]),
                "start": format_time(start),
                "end": format_time(end),
                "status": fields["status"]
                if fields["status"] in {"CONFIRMED", "TENTATIVE", "CANCELLED"}
                else "CONFIRMED",
                "title": None,
            }
            if created:
                payload["created"] = format_time(created)
            else:
                del payload["created"]
            envelope = make(
                "raw_meeting/1", f"{payload['uid']}:{payload['sequence']}", SOURCE, payload["start"], payload
            )
            results.append(SourceRecord("meeting", envelope, envelope.to_bytes()))
        except (ContractError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            results.append(Rejection(where, reason_of(exc, "unreadable event"), b""))
    return results


def read_calendars(path: Path) -> Iterator[SourceRecord | Rejection]:
    files = sorted([*path.rglob("*.ics"), *path.rglob("*.json")]) if path.is_dir() else [path]
    for file in files:
        raw = read_whole(file, "calendar file")
        if isinstance(raw, Rejection):
            yield raw
        elif file.suffix.lower() == ".json":
            yield from parse_calendar_json(raw, str(file))
        else:
            yield from parse_calendar(raw, str(file))
