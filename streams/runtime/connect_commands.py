"""``rapport connect …`` (one connector in the foreground) and ``rapport notify``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from streams.config import ConfigError, Settings

console = Console(stderr=True)


def running_bootstrap(settings: Settings) -> str:
    """The broker to produce to: RAPPORT_KAFKA_BOOTSTRAP, else a running ``rapport up``'s."""
    from streams.runtime.broker import read_bootstrap_file

    bootstrap = settings.kafka_bootstrap or read_bootstrap_file(settings.bootstrap_file)
    if not bootstrap:
        raise ConfigError(
            "no broker: start `rapport up` (it writes its address under RAPPORT_HOME) or set "
            "RAPPORT_KAFKA_BOOTSTRAP=host:port"
        )
    return bootstrap


def until_stopped(body: Callable[[threading.Event], object]) -> None:
    """Run ``body(stop)`` until Ctrl-C or SIGTERM sets ``stop``."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    body(stop)


def run_connector_config(config: dict[str, Any]) -> None:
    from kafka.errors import KafkaError

    from streams.runtime.connect import run_one
    from streams.sources.connector import ConnectorError

    settings = Settings.from_env()
    try:
        bootstrap = running_bootstrap(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    status = settings.home / "connectors" / f"{config['name']}.json"
    console.print(f"{config['kind']} connector {config['name']} → {bootstrap}; status in {status}")
    try:
        until_stopped(lambda stop: run_one(config, settings, bootstrap, stop))
    except ConnectorError as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaError as exc:
        raise click.ClickException(f"cannot reach the broker at {bootstrap}: {exc}") from None


@click.group()
def connect() -> None:
    """Keep a mailbox, calendar or CRM change stream flowing into the pipeline (until Ctrl-C).

    Checkpoints and status files live in $RAPPORT_HOME/connectors; see docs/connectors.md.
    """


name_option = click.option("--name", help="Checkpoint and status name [default: from user/url/topic].")


@connect.command("imap")
@click.option("--host", required=True)
@click.option("--user", required=True)
@click.option("--folder", "folders", multiple=True, help="Folder to follow; repeatable [default: INBOX].")
@click.option("--port", type=int, help="[default: 993, or 143 with --no-tls]")
@click.option("--tls/--no-tls", default=True, show_default=True, help="Implicit TLS (IMAPS).")
@click.option("--starttls", is_flag=True, help="Plain connection upgraded with STARTTLS.")
@click.option("--xoauth2", is_flag=True, help="The secret is an OAuth2 access token (Gmail, Microsoft 365).")
@click.option(
    "--password-env", metavar="VAR", help="Variable holding the secret [default: RAPPORT_IMAP_PASSWORD]."
)
@click.option(
    "--password-file", type=click.Path(dir_okay=False, path_type=Path), help="File holding the secret."
)
@click.option("--subjects", is_flag=True, help="Keep subjects (default: only a hash).")
@click.option(
    "--poll-seconds", type=float, default=60.0, show_default=True, help="Re-check every folder this often."
)
@name_option
def connect_imap(**options: Any) -> None:
    """Mail headers from an IMAP server: initial sync, then IDLE (never bodies)."""
    from streams.runtime.connect import default_name

    config = {k: v for k, v in options.items() if v not in (None, ())}
    config["keep_subject"] = config.pop("subjects", False)
    config["kind"] = "imap"
    config["name"] = config.get("name") or default_name(config)
    if config.get("password_file"):
        config["password_file"] = str(config["password_file"])
    run_connector_config(config)


@connect.command("caldav")
@click.option("--url", required=True, help="The calendar collection's URL.")
@click.option("--user", help="User name, if the server wants one.")
@click.option("--bearer", is_flag=True, help="The secret is an OAuth2 access token (Google Calendar).")
@click.option(
    "--password-env", metavar="VAR", help="Variable holding the password [default: RAPPORT_CALDAV_PASSWORD]."
)
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--poll-seconds", type=float, default=60.0, show_default=True)
@name_option
def connect_caldav(**options: Any) -> None:
    """Meetings from a CalDAV calendar: sync-collection (RFC 6578) or full listings."""
    from streams.runtime.connect import default_name

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if v is not None}
    config["kind"] = "caldav"
    config["name"] = config.get("name") or default_name(config)
    run_connector_config(config)


@connect.command("crm-stream")
@click.option(
    "--topic", "topics", multiple=True, required=True, help="Topic Kafka Connect writes; repeatable."
)
@click.option(
    "--mapping", type=click.Path(exists=True, dir_okay=False), help="Table mapping (TOML) for Debezium."
)
@click.option("--bootstrap", help="The Kafka holding those topics [default: the pipeline's].")
@name_option
def connect_crm_stream(**options: Any) -> None:
    """CRM change events from Kafka: Debezium (with a mapping) or Salesforce CDC."""
    from streams.runtime.connect import default_name

    config = {k: v for k, v in options.items() if v not in (None, ())}
    config["topics"] = list(config["topics"])
    config["kind"] = "crm-stream"
    config["name"] = config.get("name") or default_name({**config, "topic": config["topics"][0]})
    run_connector_config(config)


@connect.command("run")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def connect_run(config_file: Path) -> None:
    """Every connector of a connectors file (as `up --connect` runs them)."""
    from streams.runtime.connect import load_connector_configs, start_connectors
    from streams.sources.connector import ConnectorError

    settings = Settings.from_env()
    try:
        bootstrap = running_bootstrap(settings)
        configs = load_connector_configs(config_file)
        running = start_connectors(configs, settings, bootstrap)
    except (ConfigError, ConnectorError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"{len(configs)} connector(s) → {bootstrap}; status in {settings.home / 'connectors'}")
    until_stopped(threading.Event.wait)
    running.stop()


@click.command()
@click.option(
    "--config", "config_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def notify(config_file: Path) -> None:
    """Deliver alerts (the alerts topic) to Slack/Teams webhooks and email digests, until Ctrl-C."""
    from streams.sinks.notify import load_notify_config, run_notifier

    settings = Settings.from_env()
    try:
        config = load_notify_config(config_file)
        bootstrap = running_bootstrap(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"notifier on {bootstrap} topic {config.topic}: {len(config.routes)} route(s)")
    try:
        until_stopped(lambda stop: run_notifier(config, settings.home, bootstrap, stop))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
