"""Alerts the pipeline raises reach people: a real worker scores a generated dataset on the
embedded broker, publishes ``alert/1`` on the ``alerts`` topic, and the notifier delivers each
alert version exactly once by webhook (a local HTTP receiver) and once in an SMTP digest
(aiosmtpd) — the same alert versions the warehouse holds, also across a notifier restart."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from streams.config import TOPIC_ALERTS, TOPIC_DEADLETTER, Settings
from streams.identity.resolver import Resolver
from streams.runtime.producer import EventProducer
from streams.runtime.stack import Stack
from streams.sinks.notify import decode_alert, load_notify_config, run_notifier
from streams.sinks.warehouse import connect
from streams.sources.dataset import read_dataset, write_dataset
from streams.sources.synthetic import generate
from tests.runtime.topics import read_all
from tests.sinks.test_notify import Mailbox, smtp  # noqa: F401  (fixture)
from tests.sources.servers import Receiver, receiver  # noqa: F401  (fixture)

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def alerting_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six accounts over 180 days: long enough that buyers go quiet inside the data, so alerts
    come from the data's own time (replay raises 3 on it), not from the wall clock."""
    folder = tmp_path_factory.mktemp("alerting-dataset")
    events, labels = generate(6, seed=11, days=180)
    write_dataset(folder, events, labels)
    return folder


def config_file(path: Path, receiver: Receiver, smtp_port: int) -> Path:  # noqa: F811
    path.write_text(
        f"""
[notify]
digest_minutes = 0.02
poll_seconds = 0.2

[smtp]
host = "127.0.0.1"
port = {smtp_port}
starttls = false
from = "rapport@demo-seller.com"

[[routes]]
name = "slack-all"
kind = "slack"
url = "{receiver.url}/slack"
min_severity = "info"
# a local receiver, not Slack: spaced, but the dataset's 30-odd alert versions fit the run
# (spacing itself is tested in tests/sinks/test_notify.py)
min_interval_s = 0.05

[[routes]]
name = "digest"
kind = "email"
to = ["leader@demo-seller.com"]
"""
    )
    return path


def notify_for(settings: Settings, config: Path, bootstrap: str, seconds: float) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=run_notifier,
        args=(load_notify_config(config), settings.home, bootstrap, stop),
        daemon=True,
    )
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the notifier did not stop"


def test_alerts_raised_by_the_pipeline_arrive_once_by_webhook_and_digest(
    alerting_dataset: Path,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
    smtp: tuple[Mailbox, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    mailbox, port = smtp
    config = config_file(tmp_path / "notify.toml", receiver, port)
    with Stack(settings) as stack:
        stack.start_workers()
        with EventProducer(stack.bootstrap, Resolver(settings.seller_domains)) as producer:
            producer.send_all(read_dataset(alerting_dataset))
        valid = sum(n for topic, n in producer.sent.items() if topic != TOPIC_DEADLETTER)
        stack.wait_drained(valid, timeout_s=300)
        published = [decode_alert(v) for _, v in read_all(stack.bootstrap, {TOPIC_ALERTS})[TOPIC_ALERTS] if v]
        assert published, "the dataset raises alerts, so the alerts topic must carry some"
        # First run, stopped early; the second run picks up where the ledger left off.
        notify_for(settings, config, stack.bootstrap, seconds=1.0)
        notify_for(settings, config, stack.bootstrap, seconds=6.0)

    versions = {(a.alert_id, a.version) for a in published}
    client = connect(settings.warehouse_url)
    stored = dict(
        client.query("SELECT alert_id, max(version) FROM rapport.alerts GROUP BY alert_id").result_rows
    )
    latest: dict[str, int] = {}
    for alert_id, version in versions:
        latest[alert_id] = max(latest.get(alert_id, 0), version)
    assert latest == stored  # the topic carries every alert the warehouse holds, at its last version

    posts = [orjson.loads(b) for b in receiver.bodies("/slack")]
    assert len(posts) == len(versions), "each published alert version is posted exactly once"
    for alert_id, _version in versions:
        assert sum(alert_id in orjson.dumps(p).decode() for p in posts) >= 1
    digest_text = "\n".join(m.get_payload(decode=True).decode() for m in mailbox.received())
    assert mailbox.received(), "a digest was sent"
    account_lines = [line for line in digest_text.splitlines() if line.startswith("- [")]
    assert len(account_lines) == len(versions), "each alert version is one digest line, once"
