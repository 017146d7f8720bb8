"""The IMAP connector against a real Dovecot: initial sync, IDLE wake-up on new mail, and a
restart that neither repeats nor misses mail (mail delivered while it was down included)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from imapclient import IMAPClient

from streams.config import TOPIC_RAW, Settings
from streams.identity.resolver import Resolver
from streams.runtime.broker import EmbeddedBroker, ensure_topics
from streams.runtime.producer import EventProducer
from streams.sources.connector import Checkpoint, ConnectorError, ConnectorStatus, run_connector
from streams.sources.dataset import Rejection, SourceRecord
from streams.sources.imap import ImapConnector, ImapSettings, Secret
from streams.sources.mail import parse_message
from tests.runtime.topics import read_all
from tests.sources.servers import Dovecot, dovecot  # noqa: F401  (fixture)
from tests.sources.test_caldav import Collected

pytestmark = pytest.mark.broker
BODY_MARKER = f"body{uuid.uuid4().hex}"


def message(n: int, run: str, when: datetime | None = None) -> bytes:
    when = when or datetime.now(UTC) - timedelta(hours=1)
    return (
        f"Message-ID: <imap-{run}-{n}@buyer-imap.com>\r\n"
        f"From: Bo Buyer <bo@buyer-imap.com>\r\nTo: ann@demo-seller.com\r\n"
        f"Subject: question {n}\r\nDate: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Content-Type: text/plain\r\n\r\nPrivate words {BODY_MARKER} number {n}.\r\n"
    ).encode()


def deliver(server: Dovecot, messages: list[bytes], folder: str = "INBOX") -> None:
    with IMAPClient("127.0.0.1", port=server.port, ssl=False) as client:
        client.login(server.user, server.password)
        for raw in messages:
            client.append(folder, raw)


@pytest.fixture
def broker(settings: Settings) -> Iterator[str]:
    with EmbeddedBroker(settings) as embedded:
        ensure_topics(embedded.bootstrap, settings.partitions)
        yield embedded.bootstrap


def imap_connector(server: Dovecot, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> ImapConnector:
    monkeypatch.setenv("TEST_IMAP_SECRET", server.password)
    config = ImapSettings(
        host="127.0.0.1",
        user=server.user,
        secret=Secret(env="TEST_IMAP_SECRET"),
        folders=("INBOX", "Sent"),
        port=server.port,
        tls=False,
        poll_seconds=300,  # so only IDLE can explain mail seen within seconds
    )
    return ImapConnector("mailbox", config, settings.home)


class Running:
    """A connector in a thread, producing to the broker, until :meth:`stop`."""

    def __init__(self, connector: ImapConnector, settings: Settings, bootstrap: str) -> None:
        self.stop_event = threading.Event()
        self.status = ConnectorStatus(settings.home, connector.name, connector.kind)
        self.producer = EventProducer(bootstrap, Resolver(settings.seller_domains))
        self.thread = threading.Thread(
            target=run_connector, args=(connector, self.producer, self.status, self.stop_event)
        )
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(30)
        self.producer.close()
        assert not self.thread.is_alive()


def produced_ids(bootstrap: str) -> list[str]:
    return [orjson.loads(v)["event_id"] for _k, v in read_all(bootstrap, {TOPIC_RAW})[TOPIC_RAW] if v]


def wait_for(bootstrap: str, count: int, timeout_s: float = 20) -> tuple[list[str], float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        ids = produced_ids(bootstrap)
        if len(ids) >= count:
            return ids, time.monotonic() - started
        time.sleep(0.3)
    raise AssertionError(f"{len(produced_ids(bootstrap))} of {count} messages reached raw in {timeout_s}s")


def test_sync_idle_and_restart_neither_repeat_nor_miss(
    dovecot: Dovecot,  # noqa: F811
    settings: Settings,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = uuid.uuid4().hex[:8]
    deliver(dovecot, [message(n, run) for n in range(3)])
    deliver(dovecot, [message(3, run)], folder="Sent")
    first = Running(imap_connector(dovecot, settings, monkeypatch), settings, broker)
    try:
        ids, _ = wait_for(broker, 4)
        assert sorted(ids) == sorted(f"<imap-{run}-{n}@buyer-imap.com>" for n in range(4))
        deliver(dovecot, [message(4, run)])  # while the connector IDLEs
        ids, seconds = wait_for(broker, 5)
        print(f"mail delivered during IDLE reached raw in {seconds:.1f}s")
        assert seconds < 10
    finally:
        first.stop()
    deliver(dovecot, [message(5, run), message(6, run)])  # while it is down
    second = Running(imap_connector(dovecot, settings, monkeypatch), settings, broker)
    try:
        ids, _ = wait_for(broker, 7)
        time.sleep(1.5)  # a repeat would show up by now
        ids = produced_ids(broker)
    finally:
        second.stop()
    assert sorted(ids) == sorted(f"<imap-{run}-{n}@buyer-imap.com>" for n in range(7))  # each once
    checkpoint = Checkpoint(settings.home, "mailbox").load()["folders"]
    assert checkpoint["INBOX"]["last_uid"] == 6 and checkpoint["Sent"]["last_uid"] == 1
    status = orjson.loads((settings.home / "connectors" / "mailbox.json").read_bytes())
    assert status["state"] == "stopped" and status["kind"] == "imap" and status["errors"] == 0
    assert status["last_sync"] and status["produced"] == {"email": 2}  # this run: 2 sent while down
    values = b"".join(v or b"" for _k, v in read_all(broker, {TOPIC_RAW})[TOPIC_RAW])
    assert BODY_MARKER.encode() not in values and b"question" not in values  # body, subject kept out
    assert b'"size_bytes"' in values


def test_wrong_password_stops_with_the_reason(
    dovecot: Dovecot,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector = imap_connector(dovecot, settings, monkeypatch)
    monkeypatch.setenv("TEST_IMAP_SECRET", "wrong")
    status = ConnectorStatus(settings.home, connector.name, connector.kind)
    with pytest.raises(ConnectorError, match=r"login as seller@rapport\.test"):
        run_connector(connector, [], status, threading.Event())  # type: ignore[arg-type]
    written = orjson.loads(status.path.read_bytes())
    assert written["state"] == "failed" and "refused" in written["last_error"]["message"]
    assert "wrong" not in status.path.read_text()


def test_missing_secret_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAPPORT_IMAP_PASSWORD", raising=False)
    with pytest.raises(ConnectorError, match="RAPPORT_IMAP_PASSWORD"):
        Secret().read()
    (tmp_path / "token").write_text("tok\n")
    assert Secret(file=tmp_path / "token").read() == "tok"


def test_reconnects_with_backoff_after_a_server_restart(
    dovecot: Dovecot,  # noqa: F811
    settings: Settings,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = uuid.uuid4().hex[:8]
    deliver(dovecot, [message(0, run)])
    running = Running(imap_connector(dovecot, settings, monkeypatch), settings, broker)
    try:
        wait_for(broker, 1)
        dovecot.stop()  # the IDLE connection breaks
        deadline = time.monotonic() + 20
        while running.status.errors == 0:
            assert time.monotonic() < deadline, "the connector never noticed the server going away"
            time.sleep(0.1)
        status = orjson.loads(running.status.path.read_bytes())
        assert status["state"] == "error" and status["last_error"]["retry_in_s"] >= 1
        time.sleep(2)  # a retry or two fails while the server is down (backoff doubles)
        dovecot.start()
        deliver(dovecot, [message(1, run)])
        ids, seconds = wait_for(broker, 2, timeout_s=30)
        print(f"after the server came back, new mail reached raw in {seconds:.1f}s")
    finally:
        running.stop()
    assert sorted(ids) == sorted(f"<imap-{run}-{n}@buyer-imap.com>" for n in range(2))
    assert running.status.reconnects >= 1 and running.status.errors >= 2


def test_a_missing_folder_stops_with_the_reason(
    dovecot: Dovecot,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector = imap_connector(dovecot, settings, monkeypatch)
    connector.settings.folders = ("INBOX", "No Such Folder")
    status = ConnectorStatus(settings.home, connector.name, connector.kind)
    with pytest.raises(ConnectorError, match=r"IMAP folder 'No Such Folder' at 127\.0\.0\.1"):
        run_connector(connector, Collected(), status, threading.Event())
    assert orjson.loads(status.path.read_bytes())["state"] == "failed"


def test_real_mailbox_over_imap_gives_the_events_of_its_files(
    dovecot: Dovecot,  # noqa: F811
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    real_data: Path,
) -> None:
    """The Enron mailbox's first 80 files APPENDed to Dovecot: the connector sends the same records
    (and the same rejections) as reading the files, but for the size, which IMAP reports whole."""
    files = sorted(p for p in (real_data / "enron" / "presto-k").rglob("*") if p.is_file())[:80]
    assert len(files) == 80
    deliver(dovecot, [f.read_bytes() for f in files])
    connector = imap_connector(dovecot, settings, monkeypatch)
    connector.settings.folders = ("INBOX",)
    output = Collected()
    connector.sync(output, ConnectorStatus(settings.home, connector.name, connector.kind))
    connector.close()

    def summary(items: list) -> tuple[list, int]:
        records = sorted(
            (
                i.envelope.event_id,
                orjson.dumps({**i.envelope.payload, "size_bytes": 0}, option=orjson.OPT_SORT_KEYS),
            )
            for i in items
            if isinstance(i, SourceRecord)
        )
        return records, sum(isinstance(i, Rejection) for i in items)

    from_files = [parse_message(f.read_bytes(), str(f)) for f in files]
    over_imap, rejected = summary(output.items)
    assert (over_imap, rejected) == summary(from_files)
    assert len(over_imap) > 40
    sizes = [i.envelope.payload["size_bytes"] for i in output.items if isinstance(i, SourceRecord)]
    assert all(size > 0 for size in sizes)


def test_polls_where_idle_is_not_used(
    dovecot: Dovecot,  # noqa: F811
    settings: Settings,
    broker: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = uuid.uuid4().hex[:8]
    connector = imap_connector(dovecot, settings, monkeypatch)
    connector.settings.idle, connector.settings.poll_seconds = False, 0.5
    running = Running(connector, settings, broker)
    try:
        deadline = time.monotonic() + 20
        while running.status.last_sync is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        deliver(dovecot, [message(0, run)])
        ids, seconds = wait_for(broker, 1)
        print(f"polling every 0.5 s: mail reached raw in {seconds:.1f}s")
    finally:
        running.stop()
    assert ids == [f"<imap-{run}-0@buyer-imap.com>"]
    assert running.status.snapshot()["detail"]["idle"] is False
