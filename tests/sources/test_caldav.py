"""The CalDAV connector against a real Radicale, driven by the ``caldav`` client library
(its automatic SEQUENCE bump off, so each step sets SEQUENCE itself): a
created, moved (with and without a SEQUENCE bump), cancelled and deleted event are versions of
one meeting; a restart sends nothing again; descriptions never leave the parser."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import caldav
import orjson
import pytest

from streams.config import Settings
from streams.sources.caldav_feed import CalDavConnector, CalDavSettings
from streams.sources.connector import ConnectorStatus, run_connector
from streams.sources.dataset import Rejection, SourceRecord
from tests.sources.servers import Radicale, radicale  # noqa: F401  (fixture)

DESCRIPTION_MARKER = f"desc{uuid.uuid4().hex}"


def ics(uid: str, start: datetime, sequence: int, status: str = "CONFIRMED") -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")[:15] + "Z"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//rapport//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{stamp}\r\nSEQUENCE:{sequence}\r\nSTATUS:{status}\r\n"
        f"DTSTART:{start.strftime('%Y%m%dT%H%M%SZ')}\r\n"
        f"DTEND:{(start + timedelta(minutes=30)).strftime('%Y%m%dT%H%M%SZ')}\r\n"
        f"SUMMARY:Pricing {DESCRIPTION_MARKER}\r\nDESCRIPTION:Agenda {DESCRIPTION_MARKER}\r\n"
        "ORGANIZER:mailto:ann@demo-seller.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bo@buyer-cal.com\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Collected:
    """An output that keeps what it was sent (the broker path is tested with IMAP and e2e)."""

    def __init__(self) -> None:
        self.items: list[SourceRecord | Rejection] = []
        self.lock = threading.Lock()

    def send(self, item: SourceRecord | Rejection) -> None:
        with self.lock:
            self.items.append(item)

    def flush(self) -> None:
        pass

    def ids(self) -> list[str]:
        with self.lock:
            return [i.envelope.event_id for i in self.items if isinstance(i, SourceRecord)]

    def wait_for(self, count: int, timeout_s: float = 20) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.ids()) >= count:
                return self.ids()
            time.sleep(0.1)
        raise AssertionError(f"{len(self.ids())} of {count} meeting versions sent: {self.ids()}")


@pytest.fixture
def calendar(radicale: Radicale) -> Iterator[caldav.Calendar]:  # noqa: F811
    client = caldav.DAVClient(url=radicale.url, username="seller", password="any")
    yield client.principal().make_calendar(name="work", cal_id="work")


def start(
    connector: CalDavConnector, output: Collected, settings: Settings
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    status = ConnectorStatus(settings.home, connector.name, connector.kind)
    thread = threading.Thread(target=run_connector, args=(connector, output, status, stop))
    thread.start()
    return thread, stop


def test_moves_and_cancellations_are_versions_of_one_meeting(
    calendar: caldav.Calendar, settings: Settings
) -> None:
    url = str(calendar.url)
    connector_settings = CalDavSettings(url=url, user="seller", poll_seconds=0.3)
    first_start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0, second=0)
    uid = f"m-{uuid.uuid4().hex[:8]}@rapport.test"
    event = calendar.add_event(ics(uid, first_start, 0), increase_seqno=False)
    output = Collected()
    thread, stop = start(
        CalDavConnector("work-calendar", connector_settings, settings.home), output, settings
    )
    try:
        assert output.wait_for(1) == [f"{uid}:0"]
        event.data = ics(uid, first_start + timedelta(hours=3), 1)  # moved, SEQUENCE raised
        event.save(increase_seqno=False)  # SEQUENCE as written
        output.wait_for(2)
        event.data = ics(uid, first_start + timedelta(hours=5), 1)  # moved again, SEQUENCE kept
        event.save(increase_seqno=False)  # SEQUENCE as written
        output.wait_for(3)
        event.data = ics(uid, first_start + timedelta(hours=5), 2, "CANCELLED")
        event.save(increase_seqno=False)  # SEQUENCE as written
        ids = output.wait_for(4)
        other = f"d-{uuid.uuid4().hex[:8]}@rapport.test"
        deleted = calendar.add_event(ics(other, first_start, 0), increase_seqno=False)
        output.wait_for(5)
        deleted.delete()  # how most clients cancel
        ids = output.wait_for(6)
        time.sleep(1)  # further polls send nothing new
        ids = output.ids()
    finally:
        stop.set()
        thread.join(10)
    assert ids == [f"{uid}:0", f"{uid}:1", f"{uid}:2", f"{uid}:3", f"{other}:0", f"{other}:1"]
    meetings = [i.envelope.payload for i in output.items if isinstance(i, SourceRecord)]
    assert {m["uid"] for m in meetings} == {uid, other}  # versions, not new meetings
    assert [m["start"][11:16] for m in meetings[:3]] == [
        f"{(first_start + timedelta(hours=h)).hour:02d}:{first_start.minute:02d}" for h in (0, 3, 5)
    ]
    assert [m["status"] for m in meetings] == ["CONFIRMED"] * 3 + ["CANCELLED", "CONFIRMED", "CANCELLED"]
    assert all(m["description_length"] > 0 for m in meetings)

    # A restart: the checkpoint's sync token says nothing changed, so nothing is sent again.
    again = Collected()
    thread, stop = start(CalDavConnector("work-calendar", connector_settings, settings.home), again, settings)
    try:
        time.sleep(1.5)
    finally:
        stop.set()
        thread.join(10)
    assert again.ids() == []
    status = orjson.loads((settings.home / "connectors" / "work-calendar.json").read_bytes())
    assert status["state"] == "stopped" and status["last_sync"] and status["errors"] == 0
    assert status["detail"]["sync"] == "rfc6578 sync-collection"
    stored = b"".join(p.read_bytes() for p in (settings.home / "connectors").iterdir())
    sent = b"".join(i.raw for i in output.items)
    assert DESCRIPTION_MARKER.encode() not in stored + sent
