"""Calendar parsing: the real .ics files, and hostile input never raises."""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.sources.calendar import parse_calendar
from streams.sources.dataset import Rejection, SourceRecord
from tests.sources.strategies import json_documents

ICS = b"""BEGIN:VCALENDAR
VERSION:2.0
BEGIN:VEVENT
UID:q3-review-1
SEQUENCE:1
DTSTART:20250905T140000Z
DTEND:20250905T150000Z
CREATED:20250820T090000Z
STATUS:CANCELLED
ORGANIZER:mailto:ann@seller.com
ATTENDEE;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:ann@seller.com
ATTENDEE;PARTSTAT=DECLINED:mailto:bob@buyer.com
DESCRIPTION:Agenda: pricing and the secret plan
END:VEVENT
BEGIN:VEVENT
UID:no-start
ORGANIZER:mailto:ann@seller.com
END:VEVENT
END:VCALENDAR
"""


def test_event_fields_and_no_description_text() -> None:
    record, rejection = parse_calendar(ICS, "t.ics")
    assert isinstance(record, SourceRecord) and isinstance(rejection, Rejection)
    p = record.envelope.payload
    assert record.envelope.event_id == "q3-review-1:1"
    assert p["status"] == "CANCELLED" and p["sequence"] == 1
    assert p["start"] == "2025-09-05T14:00:00.000Z" and p["created"] == "2025-08-20T09:00:00.000Z"
    assert {a["email"]: a["partstat"] for a in p["attendees"]} == {
        "ann@seller.com": "ACCEPTED",
        "bob@buyer.com": "DECLINED",
    }
    assert p["description_length"] == len("Agenda: pricing and the secret plan")
    assert b"secret plan" not in record.raw
    assert "no DTSTART" in rejection.reason


def test_the_real_ics_files_parse_with_their_attendees(real_data: Path) -> None:
    folder = real_data / "icalendar"
    # Its only ATTENDEE belongs to a VALARM (the reminder's recipient), not to the event.
    google = parse_calendar((folder / "alarm_google_future.ics").read_bytes(), "google")
    assert len(google) == 1 and isinstance(google[0], Rejection)
    assert "no ORGANIZER (0 attendees)" in google[0].reason
    params = parse_calendar((folder / "property_params.ics").read_bytes(), "params")
    records = [r for r in params if isinstance(r, SourceRecord)]
    assert records and {a["email"] for a in records[0].envelope.payload["attendees"]} == {
        "rembrand@xs4all.nl",
        "rembrand@daxlab.com",
        "rembspam@xs4all.nl",
    }
    assert records[0].envelope.payload["organizer"] == "rembrand@daxlab.com"
    lists = parse_calendar((folder / "rfc_7256_multi_value_parameters.ics").read_bytes(), "rfc")
    assert lists and all(isinstance(r, Rejection) and "no DTSTART" in r.reason for r in lists)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert all(isinstance(r, SourceRecord | Rejection) for r in parse_calendar(data, "fuzz"))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_calendars_never_raise(data: st.DataObject) -> None:
    raw = bytearray(ICS)
    for _ in range(data.draw(st.integers(1, 15))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert all(isinstance(r, SourceRecord | Rejection) for r in parse_calendar(bytes(raw), "mutated"))


def test_graph_and_google_event_json(tmp_path: Path) -> None:
    import orjson

    from streams.sources.calendar import read_calendars

    graph = {
        "value": [
            {
                "id": "AAMk",
                "iCalUId": "040000008200E0",
                "isCancelled": False,
                "lastModifiedDateTime": "2025-03-01T08:00:00Z",
                "createdDateTime": "2025-02-20T08:00:00Z",
                "start": {"dateTime": "2025-03-05T10:00:00.0000000", "timeZone": "UTC"},
                "end": {"dateTime": "2025-03-05T11:00:00.0000000", "timeZone": "UTC"},
                "organizer": {"emailAddress": {"address": "ann@seller.com"}},
                "attendees": [
                    {
                        "emailAddress": {"address": "bob@buyer.com"},
                        "status": {"response": "declined"},
                        "type": "required",
                    }
                ],
                "body": {"content": "agenda text"},
            }
        ]
    }
    google = {
        "items": [
            {
                "id": "g1",
                "iCalUID": "g1@google.com",
                "status": "cancelled",
                "sequence": 2,
                "created": "2025-02-20T08:00:00Z",
                "start": {"date": "2025-03-06"},
                "end": {"date": "2025-03-07"},
                "organizer": {"email": "bob@buyer.com"},
                "attendees": [{"email": "ann@seller.com", "responseStatus": "accepted"}],
            },
            {"id": "no-start"},
        ]
    }
    (tmp_path / "graph.json").write_bytes(orjson.dumps(graph))
    (tmp_path / "google.json").write_bytes(orjson.dumps(google))
    items = list(read_calendars(tmp_path))
    records = {r.envelope.payload["uid"]: r.envelope.payload for r in items if isinstance(r, SourceRecord)}
    rejections = [r for r in items if isinstance(r, Rejection)]
    g, o = records["040000008200E0"], records["g1@google.com"]
    assert g["start"] == "2025-03-05T10:00:00.000Z" and g["attendees"][0]["partstat"] == "DECLINED"
    assert g["description_length"] == len("agenda text") and g["status"] == "CONFIRMED"
    assert o["status"] == "CANCELLED" and o["sequence"] == 2 and o["start"] == "2025-03-06T00:00:00.000Z"
    assert len(rejections) == 1 and "no start" in rejections[0].reason


@settings(max_examples=200, deadline=None)
@given(
    json_documents(
        [
            "value",
            "items",
            "iCalUId",
            "iCalUID",
            "start",
            "end",
            "dateTime",
            "date",
            "organizer",
            "attendees",
            "email",
            "emailAddress",
            "address",
            "status",
            "sequence",
            "isCancelled",
            "x",
        ]
    )
)
def test_arbitrary_event_json_never_raises(document: object) -> None:
    import json

    from streams.sources.calendar import parse_calendar_json

    results = parse_calendar_json(json.dumps(document).encode(), "fuzz.json")
    assert all(isinstance(r, SourceRecord | Rejection) for r in results)


def test_recurring_events_expand_over_a_bounded_horizon() -> None:
    weekly = ICS.replace(b"UID:q3-review-1\n", b"UID:weekly\nRRULE:FREQ=WEEKLY;COUNT=5\n").replace(
        b"STATUS:CANCELLED\n", b"EXDATE:20250912T140000Z\n"
    )
    records = [r for r in parse_calendar(weekly, "w.ics") if isinstance(r, SourceRecord)]
    starts = [r.envelope.payload["start"] for r in records]
    assert starts == [
        "2025-09-05T14:00:00.000Z",
        "2025-09-19T14:00:00.000Z",
        "2025-09-26T14:00:00.000Z",
        "2025-10-03T14:00:00.000Z",
    ]  # 5 weekly occurrences less the excluded one
    assert len({r.envelope.event_id for r in records}) == 4
    forever = ICS.replace(b"UID:q3-review-1\n", b"UID:daily\nRRULE:FREQ=DAILY\n")
    assert len([r for r in parse_calendar(forever, "d.ics") if isinstance(r, SourceRecord)]) == 200


def test_a_rule_that_never_matches_costs_a_bounded_number_of_iterations() -> None:
    """``BYMONTH=2;BYMONTHDAY=30`` matches nothing, so the 200-occurrence cap never triggers:
    dateutil alone iterated every day up to year 9999 (8.6 s of CPU per event here)."""
    started = time.process_time()
    records = [
        r
        for freq in ["DAILY", "HOURLY", "WEEKLY", "MONTHLY", "YEARLY"]
        for r in parse_calendar(
            ICS.replace(
                b"UID:q3-review-1\n", f"UID:{freq}\nRRULE:FREQ={freq};BYMONTH=2;BYMONTHDAY=30\n".encode()
            ),
            f"{freq}.ics",
        )
        if isinstance(r, SourceRecord)
    ]
    assert time.process_time() - started < 2.0
    assert [r.envelope.payload["start"] for r in records] == [
        "2025-09-05T14:00:00.000Z"
    ] * 5  # the event itself
    too_often = ICS.replace(b"UID:q3-review-1\n", b"UID:sec\nRRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30\n")
    first, _no_start = parse_calendar(too_often, "s.ics")
    assert isinstance(first, Rejection) and "more often than hourly" in first.reason
