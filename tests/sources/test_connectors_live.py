"""IMAP, CalDAV and CRM-stream connectors run as ``up`` runs them (threads beside a worker,
through the pipeline's producer): delivered mail becomes interactions within seconds, a moved
then cancelled meeting is one interaction at its last version, Debezium changes update the
warehouse's accounts and contacts, and no body or description text lands anywhere — not on a
topic, in a table, a checkpoint, a status file or a log."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import caldav
import pytest

from streams.config import Settings
from streams.runtime.broker import ensure_topics
from streams.runtime.connect import start_connectors
from streams.runtime.stack import Stack
from streams.runtime.status import read_status
from streams.sinks.warehouse import connect
from tests.runtime.topics import read_all
from tests.sources.servers import Dovecot, Radicale, dovecot, radicale  # noqa: F401  (fixtures)
from tests.sources.test_caldav import ics
from tests.sources.test_crm_stream import COMMIT, COMPANY, MAPPING, PERSON, debezium
from tests.sources.test_crm_stream import produce as produce_changes
from tests.sources.test_imap import deliver

pytestmark = pytest.mark.broker
MARKER = f"private{uuid.uuid4().hex}"


def mail(n: int, sender: str, to: str, when: datetime, reply_to: str = "") -> bytes:
    return (
        f"Message-ID: <live-{n}-{MARKER[-8:]}@x.test>\r\nFrom: {sender}\r\nTo: {to}\r\n"
        f"Subject: offer {MARKER}\r\nDate: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        + (f"In-Reply-To: {reply_to}\r\n" if reply_to else "")
        + f"Content-Type: text/plain\r\n\r\nBody text {MARKER} for nobody else.\r\n"
    ).encode()


def scored(settings: Settings) -> int:
    counters = (read_status(settings.status_file) or {}).get("counters", {})
    return int(counters.get("events", 0))


def wait_scored(settings: Settings, stack: Stack, count: int, timeout_s: float = 60) -> float:
    started = time.monotonic()
    while scored(settings) < count:
        stack.check_workers()
        assert time.monotonic() - started < timeout_s, f"{scored(settings)} of {count} events scored"
        time.sleep(0.1)
    return time.monotonic() - started


def test_live_mail_and_meetings_become_interactions_and_keep_no_text(
    dovecot: Dovecot,  # noqa: F811
    radicale: Radicale,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIVE_IMAP_SECRET", dovecot.password)
    calendar = caldav.DAVClient(url=radicale.url, username="seller", password="any").principal()
    work = calendar.make_calendar(name="work", cal_id="work")
    start = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    uid = f"live-{uuid.uuid4().hex[:8]}@rapport.test"
    configs = [
        {"kind": "imap", "name": "inbox", "host": "127.0.0.1", "port": dovecot.port, "tls": False,
         "user": dovecot.user, "password_env": "LIVE_IMAP_SECRET", "poll_seconds": 300},
        {"kind": "caldav", "name": "calendar", "url": str(work.url), "user": "seller",
         "password_env": "LIVE_IMAP_SECRET", "poll_seconds": 0.5},
        {"kind": "crm-stream", "name": "crm", "topics": ["crm.public.companies", "crm.public.people"],
         "mapping": str(MAPPING), "poll_seconds": 0.2},
    ]  # fmt: skip
    earlier = datetime.now(UTC) - timedelta(hours=5)
    broken = mail(9, "ann@demo-seller.com", "bo@buyer-live.com", earlier).replace(b"Message-ID", b"X-No-Id")
    deliver(
        dovecot, [mail(1, "ann@demo-seller.com", "bo@buyer-live.com", earlier), broken]
    )  # broken: a dead letter
    with Stack(settings) as stack:
        ensure_topics(stack.bootstrap, 1, ("crm.public.companies", "crm.public.people"))
        renamed = {**COMPANY, "name": "Globex Corporation"}
        produce_changes(
            stack.bootstrap,
            [
                ("crm.public.companies", debezium("companies", "c", None, COMPANY, COMMIT, wrapped=True)),
                ("crm.public.people", debezium("people", "c", None, PERSON, COMMIT + 1, wrapped=False)),
                (
                    "crm.public.companies",
                    debezium("companies", "u", COMPANY, renamed, COMMIT + 2, wrapped=False),
                ),
            ],
        )
        stack.start_workers()
        running = start_connectors(configs, settings, stack.bootstrap)
        try:
            wait_scored(settings, stack, 4, timeout_s=120)  # the worker is up: CRM changes and first mail
            reply = mail(2, "bo@buyer-live.com", "ann@demo-seller.com", earlier + timedelta(hours=1),
                         f"<live-1-{MARKER[-8:]}@x.test>")  # fmt: skip
            deliver(dovecot, [reply])
            seconds = wait_scored(settings, stack, 5)
            print(f"mail delivered to Dovecot was a scored interaction {seconds:.1f}s later")
            assert seconds < 15
            event = work.add_event(ics(uid, start, 0).replace("bo@buyer-cal.com", "bo@buyer-live.com"),
                                   increase_seqno=False)  # fmt: skip
            wait_scored(settings, stack, 6)
            event.data = ics(uid, start + timedelta(hours=2), 1).replace(
                "bo@buyer-cal.com", "bo@buyer-live.com"
            )
            event.save(increase_seqno=False)
            wait_scored(settings, stack, 7)
            event.delete()  # cancelled by deleting it, as most clients do
            wait_scored(settings, stack, 8)
            stack.wait_drained(8, timeout_s=60)
            topics = read_all(stack.bootstrap)
        finally:
            running.stop()
    client = connect(settings.warehouse_url)
    try:
        rows = client.query(
            "SELECT interaction_id, channel, status, version FROM rapport.interactions FINAL "
            "ORDER BY interaction_id"
        ).result_rows
        accounts = client.query(
            "SELECT account_id, name, domains FROM rapport.accounts FINAL WHERE account_id = 'crm:7'"
        ).result_rows
        contacts = client.query(
            "SELECT email, account_id, title, active FROM rapport.contacts FINAL"
        ).result_rows
        rejected = client.query("SELECT reason FROM rapport.rejected_events FINAL").result_rows
        tables = [t for (t,) in client.query("SHOW TABLES FROM rapport").result_rows]
        leaks = {}
        for table in tables:
            columns = [c[0] for c in client.query(f"DESCRIBE TABLE rapport.{table}").result_rows]
            condition = " OR ".join(f"position(toString(`{c}`), '{MARKER}') > 0" for c in columns)
            leaks[table] = client.query(f"SELECT count() FROM rapport.{table} WHERE {condition}").result_rows[
                0
            ][0]
    finally:
        client.close()
    assert [r[:2] for r in rows if r[1] == "email"] == [
        (f"email:<live-1-{MARKER[-8:]}@x.test>", "email"),
        (f"email:<live-2-{MARKER[-8:]}@x.test>", "email"),
    ]
    meetings = [r for r in rows if r[1] == "meeting"]
    assert meetings == [(f"meeting:{uid}", "meeting", "cancelled", 2)]  # one meeting, its last version
    assert accounts == [("crm:7", "Globex Corporation", ["globex.example"])]  # the update won
    assert contacts == [("hank@globex.example", "crm:7", "CEO", 1)]
    assert rejected == [("no Message-ID header",)]  # kept as its headers, without body or subject
    assert {t: n for t, n in leaks.items() if n} == {}
    on_topics = [
        t for t, messages in topics.items() for k, v in messages if MARKER.encode() in (k or b"") + (v or b"")
    ]
    assert on_topics == []
    files = [p for p in settings.home.rglob("*") if p.is_file() and "warehouse" not in p.parts]
    assert any(p.name == "inbox.checkpoint.json" for p in files) and any(
        p.name == "calendar.json" for p in files
    )
    assert [p for p in files if MARKER.encode() in p.read_bytes()] == []
