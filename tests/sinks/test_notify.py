"""The notifier against real receivers: a local HTTP server (Slack and Teams webhooks) and an
aiosmtpd SMTP server. Alerts produced to the embedded broker's ``alerts`` topic arrive once by
webhook and once in a digest, also when the notifier is SIGKILLed mid-run and restarted."""

from __future__ import annotations

import email
import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiosmtpd.controller import Controller
from kafka import KafkaProducer

from streams.config import TOPIC_ALERTS, Settings
from streams.runtime.broker import EmbeddedBroker, ensure_topics, free_port
from streams.sinks.ledger import DeliveryLedger
from streams.sinks.notify import (
    Notifier,
    QuietHours,
    decode_alert,
    load_notify_config,
    slack_message,
    teams_message,
)
from tests.sources.servers import Receiver, receiver  # noqa: F401  (fixture)

OWNERS = {"crm:1": "ann@demo-seller.com", "crm:2": "ann@demo-seller.com", "crm:3": "raj@demo-seller.com"}


def alert(n: int, account: str, resolved: bool = False, severity: str = "high") -> bytes:
    """An ``alert/1`` envelope with the warehouse row's fields (issue 12's payload)."""
    payload = {
        "alert_id": f"a{n}",
        "account_id": account,
        "raised_at": "2026-11-30T09:00:00.000Z",
        "kind": "tier_drop",
        "severity": severity,
        "reason": f"health fell to disengaged (case {n})",
        "explanation": {"from": "watch", "to": "disengaged", "event_ids": [f"email:<m{n}@x>"]},
        "model_version": "health-1",
        "version": 2 if resolved else 1,
        "status": "resolved" if resolved else "open",
        "subject": account,
        "ended_at": "2026-12-01T09:00:00.000Z" if resolved else "1970-01-01T00:00:00.000Z",
    }
    envelope = {
        "schema": "alert/1",
        "event_id": f"alert:{n}:{payload['version']}",
        "source": "rapport",
        "occurred_at": payload["raised_at"],
        "payload": payload,
    }
    return orjson.dumps(envelope)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    def received(self) -> list[email.message.Message]:
        with self.lock:
            return list(self.messages)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def broker(settings: Settings) -> Iterator[str]:
    with EmbeddedBroker(settings) as embedded:
        ensure_topics(embedded.bootstrap, 2)
        yield embedded.bootstrap


def write_config(path: Path, receiver: Receiver, smtp_port: int, digest_minutes: float) -> Path:  # noqa: F811
    owners = "\n".join(f'"{k}" = "{v}"' for k, v in OWNERS.items())
    path.write_text(
        f"""
[notify]
digest_minutes = {digest_minutes}
grafana_url = "https://grafana.example.com/d/rapport-account?var-account={{account_id}}"
poll_seconds = 0.2

[smtp]
host = "127.0.0.1"
port = {smtp_port}
starttls = false
from = "rapport@demo-seller.com"

[owners]
{owners}

[teams]
"ann@demo-seller.com" = "emea"
"raj@demo-seller.com" = "apac"

[[routes]]
name = "slack-high"
kind = "slack"
url = "{receiver.url}/slack"
min_severity = "high"
min_interval_s = 0.3

[[routes]]
name = "teams-emea"
kind = "teams"
url = "{receiver.url}/teams"
teams = ["emea"]
min_interval_s = 0.3

[[routes]]
name = "digest"
kind = "email"
to = ["owner"]
"""
    )
    return path


def produce(bootstrap: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(TOPIC_ALERTS, value=value, key=b"acct")
    producer.flush()
    producer.close()


def start_notifier(config: Path, settings: Settings, bootstrap: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env(), "RAPPORT_KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "notify", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait(
    condition: Any, what: str, timeout_s: float = 30, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"notifier exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def digest_entries(mailbox: Mailbox) -> list[tuple[str, str]]:
    """(recipient, 'case N' + section) of every alert line of every digest."""
    found = []
    for message in mailbox.received():
        section = ""
        for line in message.get_payload(decode=True).decode().splitlines():
            if line.endswith(":") and line[:-1] in ("New", "Resolved"):
                section = line[:-1]
            elif line.startswith("- ["):
                case = line.rsplit("(case ", 1)[1].rstrip(")")
                found.append((message["To"], f"{section} {case}"))
    return found


@pytest.mark.broker
def test_once_by_webhook_and_once_by_digest_across_a_sigkill(
    settings: Settings,
    broker: str,
    receiver: Receiver,  # noqa: F811
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    mailbox, port = smtp
    config = write_config(tmp_path / "notify.toml", receiver, port, digest_minutes=0.05)  # 3 s
    first = [alert(n, account) for n, account in ((1, "crm:1"), (2, "crm:2"), (3, "crm:3"), (4, "crm:1"))]
    produce(broker, [*first, alert(5, "crm:3", severity="medium"), alert(1, "crm:1", resolved=True)])
    notifier = start_notifier(config, settings, broker)
    try:
        wait(lambda: len(receiver.bodies("/slack")) >= 2, "two slack posts", process=notifier)
        time.sleep(0.1)  # mid-run: inside the 0.3 s between two posts
    finally:
        os.killpg(notifier.pid, signal.SIGKILL)
        notifier.wait(10)
    before_restart = len(receiver.bodies("/slack"))
    assert before_restart < 5  # really killed mid-run
    produce(broker, [alert(6, "crm:2"), alert(3, "crm:3", resolved=True)])
    notifier = start_notifier(config, settings, broker)
    try:
        wait(lambda: len(receiver.bodies("/slack")) >= 7, "every slack post", process=notifier)
        wait(lambda: len(digest_entries(mailbox)) >= 8, "every digest line", timeout_s=30, process=notifier)
        time.sleep(1.0)  # a repeat would show by now
    finally:
        os.killpg(notifier.pid, signal.SIGTERM)
        notifier.wait(10)

    # Slack: severity high and above, each alert version exactly once, nothing lost.
    slack = [orjson.loads(b) for b in receiver.bodies("/slack")]
    texts = sorted(
        s["text"].split("case ")[1].rstrip(")") + (" resolved" if "resolved —" in s["text"] else "")
        for s in slack
    )
    assert texts == sorted(["1", "2", "3", "4", "6", "1 resolved", "3 resolved"])
    first_post = slack[0]
    assert {"text", "blocks"} <= set(first_post)
    section = first_post["blocks"][1]["text"]["text"]
    assert (
        "rapport explain account crm:" in section and "*Owner:* " in section and "demo-seller.com" in section
    )
    assert first_post["blocks"][-1]["elements"][0]["url"].startswith("https://grafana.example.com/")

    # Teams: only the emea owner's accounts (crm:1, crm:2), any severity, once each.
    teams = [orjson.loads(b) for b in receiver.bodies("/teams")]
    cards = [t["attachments"][0]["content"] for t in teams]
    assert all(t["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive" for t in teams)
    facts = sorted(next(f["value"] for f in c["body"][2]["facts"] if f["title"] == "Alert") for c in cards)
    assert facts == sorted(["a1 v1", "a2 v1", "a4 v1", "a6 v1", "a1 v2"])

    # Digests: every alert version once, to its owner; at most one digest per owner per period.
    entries = digest_entries(mailbox)
    assert sorted(entries) == sorted(
        [("ann@demo-seller.com", f"New {n}") for n in (1, 2, 4, 6)]
        + [("ann@demo-seller.com", "Resolved 1")]
        + [("raj@demo-seller.com", f"New {n}") for n in (3, 5)]
        + [("raj@demo-seller.com", "Resolved 3")]
    )
    for owner in ("ann@demo-seller.com", "raj@demo-seller.com"):
        sent = sorted(
            email.utils.parsedate_to_datetime(m["Date"]) for m in mailbox.received() if m["To"] == owner
        )
        assert all((b - a).total_seconds() >= 2.5 for a, b in itertools.pairwise(sent)), sent
    assert len({m["Message-ID"] for m in mailbox.received()}) == len(mailbox.received())
    status = orjson.loads((settings.home / "connectors" / "notify.json").read_bytes())
    assert status["kind"] == "notifier" and status["detail"]["waiting"] == 0


def test_an_uncertain_delivery_is_sent_again_and_quiet_hours_hold(
    settings: Settings,
    receiver: Receiver,  # noqa: F811
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    """A kill between 'sending' and 'sent' (simulated in the ledger) re-sends once on restart."""
    mailbox, port = smtp
    config = load_notify_config(write_config(tmp_path / "notify.toml", receiver, port, digest_minutes=60))
    notifier = Notifier(config, settings.home, "127.0.0.1:1")
    notifier.queue(alert(7, "crm:1"), "test")
    key = "slack-high|a7|1"
    notifier.ledger.write("sending", key=key)  # ... and killed before "sent"
    notifier.ledger.close()
    restarted = Notifier(config, settings.home, "127.0.0.1:1")
    restarted.deliver_due()
    assert len(receiver.bodies("/slack")) == 1 and len(receiver.bodies("/teams")) == 1
    assert len(mailbox.received()) == 1
    restarted.deliver_due()
    again = Notifier(config, settings.home, "127.0.0.1:1")
    again.deliver_due()
    assert len(receiver.bodies("/slack")) == 1 and len(mailbox.received()) == 1  # never twice

    quiet = load_notify_config(write_config(tmp_path / "quiet.toml", receiver, port, digest_minutes=60))
    now = datetime.now(UTC)
    hours = QuietHours((now.replace(minute=0)).time(), (now.replace(minute=59)).time(), ZoneInfo("UTC"))
    held = Notifier(quiet.__class__(**{**quiet.__dict__, "quiet_hours": hours}), tmp_path / "home2", "x:1")
    held.queue(alert(8, "crm:1"), "test")
    held.deliver_due()
    assert len(receiver.bodies("/slack")) == 1  # held, not dropped:
    assert len(held.pending(quiet.routes[0])) == 1


def test_a_refused_webhook_is_retried_with_backoff_and_delivered_once(
    settings: Settings,
    receiver: Receiver,  # noqa: F811
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    _mailbox, port = smtp
    config = load_notify_config(write_config(tmp_path / "notify.toml", receiver, port, digest_minutes=60))
    notifier = Notifier(config, settings.home, "127.0.0.1:1")
    notifier.queue(alert(11, "crm:3"), "test")  # raj's account: slack only, not teams
    receiver.failures = 2
    notifier.deliver_due()
    assert receiver.bodies("/slack") == [] and notifier.backoff["slack-high"] == 2.0
    status = orjson.loads(notifier.status.path.read_bytes())
    assert status["state"] == "error" and "503" in status["last_error"]["message"]
    notifier.deliver_due()  # within the backoff: not tried
    assert receiver.failures == 1
    notifier.next_at["slack-high"] = 0.0
    notifier.deliver_due()
    assert notifier.backoff["slack-high"] == 4.0  # doubled
    notifier.next_at["slack-high"] = 0.0
    notifier.deliver_due()
    notifier.next_at["slack-high"] = 0.0
    notifier.deliver_due()
    assert len(receiver.bodies("/slack")) == 1 and "slack-high" not in notifier.backoff


def test_quiet_hours_across_midnight_message_shapes_and_a_torn_ledger(tmp_path: Path) -> None:
    hours = QuietHours(
        datetime(2026, 1, 1, 20).time(), datetime(2026, 1, 1, 7).time(), ZoneInfo("Europe/Berlin")
    )
    assert hours.active(datetime(2026, 12, 1, 22, 0, tzinfo=UTC))  # 23:00 in Berlin
    assert hours.active(datetime(2026, 12, 1, 5, 0, tzinfo=UTC))  # 06:00
    assert not hours.active(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    decoded = decode_alert(alert(9, "crm:9", resolved=True))
    assert decoded.status == "resolved" and decoded.version == 2 and decoded.key == "a9|2"
    assert slack_message(decoded, None, None)["blocks"][1]["text"]["text"].count("unassigned") == 1
    assert teams_message(decoded, "x@y.z", None)["attachments"][0]["content"]["type"] == "AdaptiveCard"
    with pytest.raises(ValueError, match="alert without"):
        decode_alert(b'{"schema": "alert/1", "payload": {"alert_id": "x"}}')
    path = tmp_path / "ledger.jsonl"
    ledger = DeliveryLedger(path)
    ledger.write("queued", key="r|a9|2", route="r", alert=decoded.__dict__)
    ledger.close()
    with path.open("ab") as torn:
        torn.write(b'{"op": "sent", "key": "r|a9')  # a kill mid-write
    replayed = DeliveryLedger(path).state
    assert list(replayed.queued) == ["r|a9|2"] and replayed.sent == set()


def test_digest_over_starttls_with_login_from_the_environment(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real aiosmtpd requiring STARTTLS before AUTH, with a certificate made here for 127.0.0.1."""
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate (Debian: apt-get install openssl)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.login == b"rapport" and data.password == b"smtp-pw-1")

    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    try:
        monkeypatch.setenv("RAPPORT_SMTP_USER", "rapport")
        monkeypatch.setenv("RAPPORT_SMTP_PASSWORD", "smtp-pw-1")
        path = tmp_path / "notify.toml"
        path.write_text(
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nstarttls = true\nca_file = "{cert}"\n'
            '[owners]\n"crm:1" = "ann@demo-seller.com"\n[[routes]]\nname = "digest"\nkind = "email"\n'
        )
        notifier = Notifier(load_notify_config(path), settings.home, "127.0.0.1:1")
        notifier.queue(alert(21, "crm:1"), "test")
        notifier.deliver_due()
    finally:
        controller.stop()
    assert logins == [(b"rapport", b"smtp-pw-1")]
    assert [m["To"] for m in mailbox.received()] == ["ann@demo-seller.com"]
    notifier.write_status("running")
    stored = notifier.status.path.read_text() + notifier.ledger.path.read_text()
    assert '"digests": 1' in notifier.status.path.read_text() and "smtp-pw-1" not in stored
