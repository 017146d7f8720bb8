"""``rapport up --connect FILE --notify FILE`` runs connectors and the notifier beside the
workers, reports them in their status files, and stops them with everything else; a wrong
connectors file stops ``up`` at once with the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from streams.config import Settings
from streams.runtime.connect import load_connector_configs
from tests.sources.servers import Dovecot, Receiver, dovecot, receiver  # noqa: F401  (fixtures)
from tests.sources.test_imap import deliver, message


def status_of(settings: Settings, name: str) -> dict:
    path = settings.home / "connectors" / f"{name}.json"
    return orjson.loads(path.read_bytes()) if path.exists() else {}


@pytest.mark.broker
def test_up_runs_connectors_and_the_notifier(
    settings: Settings,
    dovecot: Dovecot,  # noqa: F811
    receiver: Receiver,  # noqa: F811
    tmp_path: Path,
) -> None:
    connectors = tmp_path / "imap.toml"
    connectors.write_text(
        f'kind = "imap"\nname = "inbox"\nhost = "127.0.0.1"\nport = {dovecot.port}\ntls = false\n'
        f'user = "{dovecot.user}"\npassword_env = "UP_IMAP_SECRET"\n'
    )
    notify = tmp_path / "notify.toml"
    notify.write_text(f'[[routes]]\nname = "chat"\nkind = "slack"\nurl = "{receiver.url}/slack"\n')
    deliver(dovecot, [message(n, "up") for n in range(2)])
    env = {**os.environ, **settings.as_env(), "UP_IMAP_SECRET": dovecot.password}
    env.pop("RAPPORT_KAFKA_BOOTSTRAP", None)
    up = subprocess.Popen(
        [sys.executable, "-m", "streams", "up", "--connect", str(connectors), "--notify", str(notify)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while not (
            status_of(settings, "inbox").get("produced", {}).get("email") == 2
            and status_of(settings, "notify").get("state") == "running"
        ):
            assert up.poll() is None, up.stderr.read().decode() if up.stderr else ""
            assert time.monotonic() < deadline, (status_of(settings, "inbox"), status_of(settings, "notify"))
            time.sleep(0.3)
        inbox = status_of(settings, "inbox")
        assert inbox["state"] == "idle" and inbox["detail"]["idle"] is True and inbox["last_sync"]
        shown = subprocess.run(
            [sys.executable, "-m", "streams", "status"], env=env, capture_output=True, text=True, timeout=60
        )
        assert shown.returncode == 0, shown.stderr
        assert "connector inbox (imap): idle" in shown.stdout and "connector notify" in shown.stdout
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        code = up.wait(60)
    assert code == 0
    assert status_of(settings, "inbox")["state"] == "stopped"
    assert status_of(settings, "notify")["state"] == "stopped"


def test_a_wrong_connectors_file_names_the_problem(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "pop3"\n')
    with pytest.raises(ValueError, match="kind must be one of imap, caldav, crm-stream"):
        load_connector_configs(bad)
    bad.write_text(
        '[[connectors]]\nkind = "imap"\nuser = "a@b.c"\n[[connectors]]\nkind = "imap"\nuser = "a@b.c"\n'
    )
    with pytest.raises(ValueError, match="names repeat"):
        load_connector_configs(bad)
    bad.write_text('[[connectors]]\nkind = "caldav"\nurl = "https://x.test/cal/"\n')
    assert load_connector_configs(bad)[0]["name"] == "caldav-https-x.test-cal"
    env = {**os.environ, **settings.as_env(), "RAPPORT_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    bad.write_text('kind = "imap"\nhost = "127.0.0.1"\nuser = "a@b.c"\ncolour = "blue"\n')
    result = subprocess.run(
        [sys.executable, "-m", "streams", "connect", "run", str(bad)], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0 and "unknown setting(s) colour" in result.stderr


def test_connect_takes_no_secret_on_the_command_line_and_needs_a_broker(settings: Settings) -> None:
    env = {**os.environ, **settings.as_env()}
    env.pop("RAPPORT_KAFKA_BOOTSTRAP", None)
    command = [
        sys.executable,
        "-m",
        "streams",
        "connect",
        "imap",
        "--host",
        "127.0.0.1",
        "--user",
        "u@x.test",
    ]
    refused = subprocess.run([*command, "--password", "hunter22"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "No such option: --password" in refused.stderr
    no_broker = subprocess.run(command, env=env, capture_output=True, text=True)
    assert no_broker.returncode == 1 and "no broker: start `rapport up`" in no_broker.stderr


def test_every_connect_option_makes_a_valid_connector(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each `rapport connect` command passes on builds its connector (run with it stopped)."""
    from click.testing import CliRunner

    from streams.cli import main
    from streams.runtime import connect_commands
    from streams.runtime.connect import build_connector

    built = []
    monkeypatch.setattr(
        connect_commands, "run_connector_config", lambda c: built.append(build_connector(c, settings, "b:1"))
    )
    runner = CliRunner()
    for args in (
        ["imap", "--host", "h", "--user", "u@x.test", "--folder", "INBOX", "--folder", "Sent", "--no-tls",
         "--port", "143", "--subjects", "--xoauth2", "--password-file", "/run/token", "--poll-seconds", "30"],
        ["caldav", "--url", "https://c.test/cal/", "--bearer", "--password-env", "TOKEN", "--name", "cal"],
        ["crm-stream", "--topic", "crm.public.companies", "--topic", "crm.public.people",
         "--mapping", "docs/examples/crm-mapping.toml", "--bootstrap", "kafka.test:9092"],
    ):  # fmt: skip
        result = runner.invoke(main, ["connect", *args])
        assert result.exit_code == 0, result.output
    imap, caldav, crm = built
    assert imap.name == "imap-u-x.test" and imap.settings.folders == ("INBOX", "Sent")
    assert imap.settings.keep_subject and imap.settings.xoauth2 and not imap.settings.tls
    assert imap.settings.port == 143 and imap.settings.secret.file is not None
    assert caldav.name == "cal" and caldav.settings.bearer and caldav.settings.secret.env == "TOKEN"
    assert crm.settings.topics == ("crm.public.companies", "crm.public.people")
    assert crm.settings.bootstrap == "kafka.test:9092" and "public.companies" in crm.settings.mapping
