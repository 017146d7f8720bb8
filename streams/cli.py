"""The ``rapport`` command."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial, wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.text import Text

from streams.config import ConfigError, Settings, redact_logs, redacted
from streams.runtime.broker import BrokerError
from streams.runtime.collector import relax_collector
from streams.runtime.home_lock import HomeLocked
from streams.runtime.stack import PipelineError
from streams.sinks.warehouse import WarehouseError

console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
DEBUG = {"on": False}  # `rapport --debug …`: tracebacks instead of one-line errors


def settings_from_env(seller_domains: tuple[str, ...] = ()) -> Settings:
    return Settings.from_env().with_seller_domains(list(seller_domains))


def friendly_errors(func: F) -> F:
    """Known failures print one clear line and exit 2 instead of a traceback."""

    from clickhouse_connect.driver.exceptions import Error as ClickHouseError
    from kafka.errors import KafkaError

    from streams.runtime.replay_input import ReaderError

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (
            ConfigError,
            BrokerError,
            WarehouseError,
            PipelineError,
            ReaderError,
            FileNotFoundError,
            HomeLocked,
            KafkaError,
            ClickHouseError,
        ) as exc:
            if DEBUG["on"]:
                raise
            console.print(f"[red]rapport: {redacted(str(exc))}", soft_wrap=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


seller_domain_option = click.option(
    "--seller-domain",
    "seller_domains",
    multiple=True,
    metavar="DOMAIN",
    help="Seller (internal) email domain; repeatable. Adds to RAPPORT_SELLER_DOMAINS.",
)


@click.group()
@click.version_option(package_name="rapport")
@click.option("--debug", is_flag=True, help="Show tracebacks and library logs on errors.")
def main(debug: bool) -> None:
    """Rapport: buyer-seller relationship health from email, meetings and CRM."""
    DEBUG["on"] = debug
    logging.basicConfig(
        level=logging.INFO if debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    redact_logs()
    relax_collector()


@contextmanager
def owning_home(settings: Settings) -> Iterator[None]:
    """Hold ``RAPPORT_HOME`` for this command (see streams/runtime/home_lock.py)."""
    from streams.runtime.home_lock import command_line, home_lock

    with home_lock(settings.home, command_line(), notice=lambda text: console.print(f"[yellow]{text}")):
        yield


@main.command()
@click.option("--accounts", default=100, show_default=True, help="Accounts to generate.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the generated data.")
@friendly_errors
def demo(accounts: int, seed: int) -> None:
    """Generate data, run it through broker, worker and warehouse, print the result."""
    from streams.runtime.demo import run_demo

    settings = settings_from_env()
    if not os.environ.get("RAPPORT_BROKER_STORAGE", "").strip() and not settings.kafka_bootstrap:
        # measured: the demo takes 59 s on the memory broker and 148 s on the durable one (README)
        settings = replace(settings, broker_storage="memory")
        console.print("demo: memory broker (nothing kept; RAPPORT_BROKER_STORAGE=durable keeps it)")
    with owning_home(settings):
        code = run_demo(settings, accounts, seed, console)
    sys.exit(code)


@main.command()
@click.option("--accounts", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
@click.option("--start", default="2025-07-01", show_default=True, help="First day (YYYY-MM-DD, UTC).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def generate(accounts: int, seed: int, days: int, start: str, out: Path) -> None:
    """Write a deterministic synthetic dataset with planted, labelled personas."""
    from streams.sources.dataset import write_dataset
    from streams.sources.synthetic import generate as make_events

    try:
        first = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise click.BadParameter(f"{start!r} is not a date like 2025-07-01", param_hint="--start") from None
    with console.status(f"generating {accounts} accounts"):
        events, labels = make_events(accounts, seed, first, days)
        counts = write_dataset(out, events, labels)
    console.print(
        f"wrote {sum(counts.values()):,} events to {out}: {counts}; labels in {out / 'labels.json'}"
    )


@main.command()
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@seller_domain_option
@click.option(
    "--connect",
    "connect_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Connectors file (TOML, docs/connectors.md) to run beside the workers; repeatable.",
)
@click.option(
    "--notify",
    "notify_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Notifier config (TOML): deliver alerts while up.",
)
@friendly_errors
def up(
    workers: int, seller_domains: tuple[str, ...], connect_files: tuple[Path, ...], notify_file: Path | None
) -> None:
    """Run broker (embedded unless RAPPORT_KAFKA_BOOTSTRAP) and workers until Ctrl-C, with the
    connectors of ``--connect`` files and the notifier of ``--notify`` beside them.

    Ctrl-C (or SIGTERM) first drains what was produced (up to RAPPORT_DRAIN_TIMEOUT_S, default
    60 s); a second Ctrl-C stops at once. The durable embedded broker keeps what is left.
    """
    from streams.runtime.connect import start_alongside
    from streams.runtime.stack import Stack

    settings = settings_from_env(seller_domains)
    if workers > 1 and settings.warehouse_url.startswith("chdb://"):
        raise ConfigError(
            f"--workers {workers} needs a ClickHouse server: embedded chDB lets one process hold "
            "the warehouse; set RAPPORT_WAREHOUSE_URL=http://user:password@host:8123"
        )
    drain_s = float(os.environ.get("RAPPORT_DRAIN_TIMEOUT_S", "60"))
    stopping = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    with owning_home(settings):
        check_warehouse(settings)
        with Stack(settings, workers=workers) as stack:
            stack.start_workers()
            alongside = start_alongside(connect_files, notify_file, settings, stack.bootstrap)
            settings.bootstrap_file.write_text(stack.bootstrap)
            settings.seller_domains_file.write_text(",".join(settings.seller_domains))
            kind = "external" if not stack.embedded else f"embedded Tansu, {settings.broker_storage}"
            console.print(
                f"broker {stack.bootstrap} ({kind}), {workers} worker(s), warehouse "
                f"{redacted(settings.warehouse_url)}\nlogs in {settings.home}; `rapport status` shows "
                "progress; Ctrl-C stops everything"
            )
            try:
                try:
                    while not stopping:
                        stack.check_broker(console.print)
                        settings.bootstrap_file.write_text(stack.bootstrap)
                        stack.check_workers()
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
                console.print("stopping: draining what was produced (Ctrl-C again to stop now)")
                stack.drain(drain_s, console.print)
            except KeyboardInterrupt:
                pass
            finally:
                alongside.stop()
                settings.bootstrap_file.unlink(missing_ok=True)
                settings.seller_domains_file.unlink(missing_ok=True)
                console.print("stopped")


def check_warehouse(settings: Settings) -> None:
    """A ClickHouse server that does not answer fails now, in seconds, not inside a worker."""
    if settings.warehouse_url.startswith("chdb://"):
        return
    from streams.sinks.warehouse import connect

    connect(settings.warehouse_url).close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@friendly_errors
def status(as_json: bool) -> None:
    """What runs in RAPPORT_HOME (broker, workers, warehouse holder), consumer lag per topic,
    events processed, the last error, and the warehouse's row counts."""
    from datetime import UTC, datetime

    from streams.runtime.overview import pipeline_status

    report = pipeline_status(Settings.from_env())
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    out = Console()

    def when(stamp: float | None) -> str:
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if stamp else "-"

    owner = report["owner"]
    out.print(
        f"home {report['home']}: "
        + (
            f"held by `{owner['command']}` (pid {owner['pid']}, since {when(owner['since'])})"
            if owner
            else "nothing running"
        )
    )
    for proc in report["processes"]:
        out.print(f"  {proc['role']}: pid {proc['pid']}, since {when(proc['since'])}")
    out.print(f"broker: {report['broker'] or 'not running'}")
    if isinstance(report.get("lag"), dict):
        out.print("lag: " + ", ".join(f"{t} {n:,}" for t, n in report["lag"].items()))
    elif "lag" in report:
        out.print(f"lag: {report['lag']}")
    out.print(
        f"events processed: {report['events_processed']:,} (pending {report['pending_events']}, "
        f"worker status at {when(report['worker_updated'])})"
    )
    out.print(f"last error: {report['last_error'] or 'none'}", soft_wrap=True)
    for c in report.get("connectors", []):
        error = (
            (c.get("last_error") or {}).get("message", "") if isinstance(c.get("last_error"), dict) else ""
        )
        out.print(
            f"connector {c.get('name')} ({c.get('kind')}): {c.get('state')}, last sync "
            f"{c.get('last_sync') or '-'}, lag {c.get('lag', 0)}, errors {c.get('errors', 0)}"
            + (f" (last: {error})" if error else ""),
            soft_wrap=True,
            markup=False,
        )
    if report.get("warehouse_damage"):
        out.print(report["warehouse_damage"], soft_wrap=True, markup=False, style="red")
    rows = report["warehouse_rows"]
    if isinstance(rows, dict):
        out.print("warehouse rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    else:
        out.print(f"warehouse rows: {rows}", soft_wrap=True)


@main.command(hidden=True)
def worker() -> None:
    """One faust worker process (started by `up`, `demo` and `ingest`)."""
    from streams.runtime.worker import run_worker

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise SystemExit(f"rapport worker: {exc}") from None
    sys.argv = [sys.argv[0]]  # faust's worker parses argv itself
    run_worker(settings)


@main.group()
def ingest() -> None:
    """Produce source data to the pipeline."""


def run_ingest(
    paths: tuple[Path, ...], seller_domains: tuple[str, ...], as_json: bool, subjects: bool, kind: str | None
) -> None:
    """Produce inputs to a running pipeline, or run a one-shot embedded one; print the tally."""
    from streams.identity.resolver import Resolver
    from streams.runtime.broker import check_reachable, read_bootstrap_file
    from streams.runtime.demo import progress_bar, run_through_pipeline
    from streams.runtime.producer import EventProducer
    from streams.sources.reader import Tally, read_sources

    settings = settings_from_env(seller_domains)
    tally = Tally()
    nothing_readable(paths, subjects, kind)
    if settings.kafka_bootstrap:
        check_reachable(settings.kafka_bootstrap)
    bootstrap = settings.kafka_bootstrap or read_bootstrap_file(settings.bootstrap_file)
    if bootstrap:
        running = settings.seller_domains_file.read_text() if settings.seller_domains_file.exists() else None
        domains = settings.seller_domains
        if running is not None and set(filter(None, running.split(","))) != set(settings.seller_domains):
            # count what the workers will do: they resolve with their own seller domains
            domains = tuple(filter(None, running.split(",")))
            console.print(
                f"[yellow]the running workers place the seller side with seller domains "
                f"{running or '(none)'}; this summary counts with theirs. "
                "Restart `rapport up --seller-domain …` to change them."
            )
        resolver = Resolver(domains)
        with progress_bar(console) as bar, EventProducer(bootstrap, resolver) as producer:
            task = bar.add_task(f"producing to {bootstrap}", total=None)
            producer.send_all(read_sources(paths, subjects, kind), tally, progress=lambda: bar.advance(task))
    else:
        with owning_home(settings):
            console.print(
                "no running broker: running a one-shot embedded pipeline (start, produce, drain, stop)"
            )
            run_through_pipeline(
                lambda: read_sources(paths, subjects, kind), replace(settings), console, tally=tally
            )
    summary = tally.as_dict()
    if as_json:
        click.echo(orjson.dumps(summary).decode())
    else:
        console.print(summary)


def nothing_readable(paths: tuple[Path, ...], subjects: bool, kind: str | None) -> None:
    """Exit 1, before any broker starts, when the inputs hold no readable record."""
    from streams.sources.dataset import Rejection
    from streams.sources.reader import read_sources

    unreadable = 0
    first_reason = ""
    for item in read_sources(paths, subjects, kind):
        if not isinstance(item, Rejection):
            return
        unreadable += 1
        first_reason = first_reason or item.reason
    what = {"email": "messages", "calendar": "events", "crm": "CRM records"}.get(kind or "", "records")
    where = ", ".join(str(p) for p in paths)
    detail = f" ({unreadable} unreadable, first: {first_reason[:120]})" if unreadable else ""
    console.print(f"[red]rapport: 0 {what} found in {where}{detail}", soft_wrap=True)
    sys.exit(1)


def ingest_options(func: F) -> F:
    """The options every `ingest` command takes."""
    func = click.option("--subjects", is_flag=True, help="Keep email subjects (default: only a hash).")(func)
    func = click.option(
        "--json", "as_json", is_flag=True, help="Print the summary as JSON on the last line."
    )(func)
    return seller_domain_option(func)  # type: ignore[no-any-return]


INGEST_KINDS = {  # command name -> (kind of input, what it reads)
    "dataset": (None, "dataset folders (from `rapport generate`)"),
    "email": ("email", "email: maildir, mbox, .eml, Gmail/Graph message JSON (headers only)"),
    "calendar": ("calendar", "calendars: .ics, Graph or Google event JSON (descriptions only as a length)"),
    "crm": (
        "crm",
        "CRM CSV exports (accounts, sellers, opportunities; mapping: streams/sources/crm.py) and "
        "change-data-capture JSON (format: streams/sources/crm_changes.py)",
    ),
}


def add_ingest_command(name: str, kind: str | None, what: str) -> None:
    def command(
        paths: tuple[Path, ...], seller_domains: tuple[str, ...], as_json: bool, subjects: bool
    ) -> None:
        run_ingest(paths, seller_domains, as_json, subjects, kind)

    command.__doc__ = (
        f"Produce {what}.\n\nWith RAPPORT_KAFKA_BOOTSTRAP or a running `rapport up`, only produces; "
        "otherwise runs a one-shot embedded pipeline (start, produce, drain, stop)."
    )
    paths = click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
    ingest.command(name)(paths(ingest_options(friendly_errors(command))))


for _name, (_kind, _what) in INGEST_KINDS.items():
    add_ingest_command(_name, _kind, _what)


def as_of_time(text: str) -> float:
    """``--as-of``'s ISO date or time as epoch seconds (UTC unless it names an offset)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is no ISO date or time (e.g. 2001-12-31 or 2001-12-31T18:00Z)"
        ) from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@seller_domain_option
@click.option(
    "--as-of",
    "as_of",
    metavar="TIME",
    help="Score as of this ISO date or time (UTC unless it has an offset): the end of input closes "
    "every account's days through it. Default: through the input's own watermark, as a drained "
    "live worker does.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on the last line.")
@friendly_errors
def replay(
    paths: tuple[Path, ...], seller_domains: tuple[str, ...], as_of: str | None, as_json: bool
) -> None:
    """Score history (dataset folders, mail, calendars, CRM CSV and change feeds) straight into the
    warehouse, without a broker."""
    from streams.runtime.demo import progress_bar
    from streams.runtime.replay import replay as run_replay
    from streams.sources.reader import read_sources

    settings = settings_from_env(seller_domains)
    started = time.perf_counter()
    with owning_home(settings), progress_bar(console) as bar:
        task = bar.add_task("replaying", total=None)
        summary = run_replay(
            partial(read_sources, paths),  # read and resolved in a reader process
            settings,
            progress=lambda n: bar.advance(task, n),
            as_of=as_of_time(as_of) if as_of else None,
        )
    elapsed = time.perf_counter() - started
    result = {
        "read": summary.read,
        "rejected": summary.rejected,
        "duplicates": summary.duplicates,
        "rows": dict(summary.rows),
        "seconds": round(elapsed, 2),
    }
    if as_json:
        click.echo(orjson.dumps(result).decode())
    else:
        console.print(result)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@seller_domain_option
@click.option("--json", "as_json", is_flag=True, help="Print the audit as one JSON object.")
@friendly_errors
def audit(paths: tuple[Path, ...], seller_domains: tuple[str, ...], as_json: bool) -> None:
    """Which organisations in mail are relationships, with the evidence and why not (no broker,
    no warehouse)."""
    from streams.identity.audit import audit as run_audit
    from streams.identity.audit import render_audit
    from streams.sources.reader import read_sources

    settings = settings_from_env(seller_domains)
    if not settings.seller_domains:
        raise click.UsageError("pass --seller-domain DOMAIN (or set RAPPORT_SELLER_DOMAINS)")
    with console.status("auditing"):
        report = run_audit(read_sources(paths), settings.seller_domains)
    if as_json:
        click.echo(orjson.dumps(report).decode())
    else:
        render_audit(report, Console())


@main.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on the last line.")
@friendly_errors
def forget(email: str, as_json: bool) -> None:
    """Remove a person from the warehouse and stream state; rescore their accounts.

    With the workers stopped it works on the warehouse directly; while they run (under `rapport
    up`, or with RAPPORT_KAFKA_BOOTSTRAP naming their broker) it sends them a forget/1 control record.
    See docs/design.md, "Forgetting a person".
    """
    from streams.runtime.broker import read_bootstrap_file
    from streams.runtime.forget import ForgetError, request_forget, running_worker
    from streams.runtime.forget import forget as run_forget
    from streams.sinks.warehouse import connect, migrate

    settings = Settings.from_env()
    bootstrap = settings.kafka_bootstrap or read_bootstrap_file(settings.bootstrap_file)
    if running_worker(settings) and bootstrap:  # a running `up`: through the stream, in order
        settings = replace(settings, kafka_bootstrap=bootstrap)
        try:
            address = request_forget(email, settings)
        except ForgetError as exc:
            console.print(f"[red]rapport: {exc}")
            sys.exit(2)
        sent = {"email": address, "sent_to": "running workers", "partitions": settings.partitions}
        if as_json:
            click.echo(orjson.dumps(sent).decode())
        else:
            click.echo(
                f"asked the running workers to forget {address}; `rapport status` counts it under forgets"
            )
        return
    with owning_home(settings), durable_broker_for(settings) as settings:
        client = connect(settings.warehouse_url)
        try:
            migrate(client)
            report = run_forget(email, settings, client)
        except ForgetError as exc:
            console.print(f"[red]rapport: {exc}")
            sys.exit(2)
        finally:
            client.close()
    if as_json:
        click.echo(orjson.dumps(report.as_dict()).decode())
    else:
        click.echo(report.as_text())


def view_output_options(func: F) -> F:
    """``--format``, ``--json`` (an alias of ``--format json``) and ``--wide`` of every view."""
    func = click.option(
        "--wide", is_flag=True, help="Show every column at its full width (no wrapping, none dropped)."
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(func)
    return click.option(  # type: ignore[no-any-return]
        "--format",
        "fmt",
        type=click.Choice(["table", "tsv", "json"]),
        help="table on a terminal, tsv when piped [default]; json keeps the raw keys.",
    )(func)


def view_output(fmt: str | None, as_json: bool, wide: bool) -> Any:
    """The printer of a view, or None when it prints JSON."""
    from streams.views.terminal import Output, output_format

    chosen = output_format(fmt, as_json)
    return None if chosen == "json" else Output(chosen, wide)


@contextmanager
def durable_broker_for(settings: Settings) -> Iterator[Settings]:
    """The settings with a started durable embedded broker that already holds data, so what a
    command writes to the stream state (``forget``'s recomputed states) reaches its changelog."""
    from streams.runtime.broker import EmbeddedBroker

    broker = EmbeddedBroker(settings)
    if settings.kafka_bootstrap or not broker.durable or not broker.data_dir.exists():
        yield settings
        return
    with broker:
        yield replace(settings, kafka_bootstrap=broker.bootstrap)


@main.group()
def warehouse() -> None:
    """The ClickHouse warehouse (chDB by default)."""


@warehouse.command("migrate")
@friendly_errors
def warehouse_migrate() -> None:
    """Apply schemas/warehouse migrations (idempotent)."""
    from streams.sinks.warehouse import connect, migrate

    settings = Settings.from_env()
    applied = migrate(connect(settings.warehouse_url))
    console.print(f"{redacted(settings.warehouse_url)}: applied {applied or 'nothing (up to date)'}")


@warehouse.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on the last line.")
@friendly_errors
def warehouse_check(as_json: bool) -> None:
    """Find damaged parts and compare row counts with the stream's own; exit 1 on any problem."""
    from streams.runtime.status import read_status
    from streams.sinks.check import check_warehouse
    from streams.sinks.warehouse import connect

    settings = Settings.from_env()
    report = check_warehouse(
        connect(settings.warehouse_url), read_status(settings.status_file), settings.written_dir
    )
    if as_json:
        click.echo(orjson.dumps(report.as_dict()).decode())
    else:
        for t in report.tables:
            written = "?" if t.written is None else f"{t.written:,}"
            expected = "" if t.expected is None else f", about {t.expected:,} written in all"
            console.print(
                f"{t.table}: {t.stored:,} stored, {written} written by the stream{expected}, "
                f"{t.missing:,} damaged"
            )
        console.print((report.problems and "[red]" + "\n".join(report.problems)) or "[green]warehouse OK")
    sys.exit(0 if report.ok else 1)


@warehouse.command("query")
@click.argument("sql")
@view_output_options
@friendly_errors
def warehouse_query(sql: str, fmt: str | None, as_json: bool, wide: bool) -> None:
    """Run one SQL query against the warehouse and print the rows (--json: one object per row)."""
    from streams.views.terminal import Column

    with reading_warehouse() as client:  # on a home `up` has not written to yet: no rows, not an error
        result = client.query(sql)
    out = view_output(fmt, as_json, wide)
    if out is None:
        for row in result.result_rows:
            click.echo(orjson.dumps(dict(zip(result.column_names, row, strict=True)), default=str).decode())
        return
    out.table([Column(name) for name in result.column_names], result.result_rows)


@main.group()
def explain() -> None:
    """Why an account or a meeting scores what it does (from the warehouse)."""


@contextmanager
def reading_warehouse() -> Iterator[Any]:
    """A migrated client for a view; "nothing to show" prints its one line and exits 1."""
    from streams.sinks.warehouse import connect, migrate
    from streams.views.read import ViewError
    from streams.views.terminal import text

    client = connect(Settings.from_env().warehouse_url)
    try:
        migrate(client)  # an empty or older warehouse answers "nothing yet", not a missing table
        yield client
    except ViewError as exc:
        console.print(Text(f"rapport: {text(str(exc))}", style="red"), soft_wrap=True)
        sys.exit(1)
    finally:
        client.close()


def _explain(kind: str, key: str, since: datetime | None, fmt: str | None, as_json: bool, wide: bool) -> None:
    from streams.views.explain import account_explanation, meeting_explanation, render_account, render_meeting

    with reading_warehouse() as client:
        if kind == "account":
            view = account_explanation(client, key, since.date() if since else None)
        else:
            view = meeting_explanation(client, key)
    out = view_output(fmt, as_json, wide)
    if out is None:
        click.echo(orjson.dumps(view, default=str).decode())
    elif kind == "account":
        render_account(view, out)
    else:
        render_meeting(view, out)


@explain.command("account")
@click.argument("account")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Also say what moved since DATE.")
@view_output_options
@friendly_errors
def explain_account(account: str, since: datetime | None, fmt: str | None, as_json: bool, wide: bool) -> None:
    """Signals, contributions, evidence and alerts behind an account's health.

    ACCOUNT is an id, a unique id prefix, a domain or a name (any case)."""
    _explain("account", account, since, fmt, as_json, wide)


@explain.command("meeting")
@click.argument("meeting_id")
@view_output_options
@friendly_errors
def explain_meeting(meeting_id: str, fmt: str | None, as_json: bool, wide: bool) -> None:
    """Which preparation signals a meeting had, and which it lacked (a unique id prefix will do)."""
    _explain("meeting", meeting_id, None, fmt, as_json, wide)


SORT_KEYS = ("health", "trend", "depth", "engaged", "last-touch", "alerts", "account")


@main.command()
@click.option(
    "--tier", multiple=True, type=click.Choice(["healthy", "watch", "at_risk", "disengaged", "no_engagement"])
)
@click.option("--at-risk", is_flag=True, help="Only tier at risk or disengaged.")
@click.option("--alerting", is_flag=True, help="Only accounts with an open alert.")
@click.option("--seller", metavar="SELLER", help="Only accounts this seller owns or is in touch with.")
@click.option("--sort", type=click.Choice(SORT_KEYS), default="health", show_default=True)
@click.option("--reverse", is_flag=True, help="Reverse the sort order.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N accounts.")
@view_output_options
@friendly_errors
def accounts(
    tier: tuple[str, ...],
    at_risk: bool,
    alerting: bool,
    seller: str | None,
    sort: str,
    reverse: bool,
    limit: int | None,
    fmt: str | None,
    as_json: bool,
    wide: bool,
) -> None:
    """Accounts with health, tier, 30-day trend, depth, engaged contacts, last touch, open alerts
    (worst health first; CRM accounts without engagement first of all)."""
    from streams.views.accounts import account_list, render_accounts

    with reading_warehouse() as client:
        found = account_list(client, tier, at_risk, seller, sort, reverse, limit, alerting)
    out = view_output(fmt, as_json, wide)
    if out is None:
        click.echo(orjson.dumps(found).decode())
    else:
        render_accounts(found, out)


@main.command()
@click.argument("account")
@view_output_options
@friendly_errors
def account(account: str, fmt: str | None, as_json: bool, wide: bool) -> None:
    """One account: scores with explanations, contacts by seniority × function, recent meetings
    with preparedness, recent value moments, alerts.

    ACCOUNT is an id, a unique id prefix, a domain or a name (any case)."""
    from streams.views.accounts import account_detail, render_account_detail

    with reading_warehouse() as client:
        view = account_detail(client, account)
    out = view_output(fmt, as_json, wide)
    if out is None:
        click.echo(orjson.dumps(view).decode())
    else:
        render_account_detail(view, out)


@main.command()
@click.option(
    "--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only alerts raised on or after DATE."
)
@click.option("--open", "open_only", is_flag=True, help="Only alerts still open.")
@click.option(
    "--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind (repeatable), e.g. contact_silent."
)
@click.option("--account", metavar="ACCOUNT", help="Only this account (id, id prefix, domain or name).")
@click.option("--owner", metavar="OWNER", help="Only accounts this CRM owner owns.")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N alerts.")
@view_output_options
@friendly_errors
def alerts(
    since: datetime | None,
    open_only: bool,
    kinds: tuple[str, ...],
    account: str | None,
    owner: str | None,
    limit: int | None,
    fmt: str | None,
    as_json: bool,
    wide: bool,
) -> None:
    """Alerts, newest first, with their reasons and how they ended."""
    from streams.views.alerts import alert_list, render_alerts

    with reading_warehouse() as client:
        found = alert_list(client, since.date() if since else None, limit, open_only, kinds, account, owner)
    out = view_output(fmt, as_json, wide)
    if out is None:
        click.echo(orjson.dumps(found).decode())
    else:
        render_alerts(found, out)


@main.command()
@click.option(
    "--quarter", metavar="YYYYQN", help="Quarter to review, e.g. 2026Q3 [default: the last complete one]."
)
@click.option("--account", "account_id", metavar="ID", help="Review this account.")
@click.option("--all", "every", is_flag=True, help="Review every account scored in the quarter.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--pdf", is_flag=True, help="Also print every page as PDF (headless Chromium).")
@friendly_errors
def review(quarter: str | None, account_id: str | None, every: bool, out: Path, pdf: bool) -> None:
    """Write quarterly relationship reviews: one offline HTML page per account, one per owner,
    and index.html (with --pdf, each also as a PDF beside it).

    ACCOUNT may be an id, a unique id prefix, a domain or a name (any case)."""
    from streams.views.review import Quarter, account_review, default_quarter, portfolio, reviewed_accounts
    from streams.views.review_page import write_review

    if every == bool(account_id):
        raise click.UsageError("pass either --account ID or --all")
    try:
        wanted = Quarter.parse(quarter) if quarter else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--quarter") from None
    with reading_warehouse() as client:
        chosen = wanted or default_quarter(client)
        accounts = reviewed_accounts(client, chosen, account_id)
        with console.status(f"reviewing {len(accounts)} account(s) for {chosen}"):
            reviews = [account_review(client, a, chosen) for a in accounts]
    written = write_review(out, str(chosen), reviews, portfolio(reviews))
    console.print(f"wrote {len(reviews)} review page(s) for {chosen}, one per owner, and {written[0]}")
    if pdf:
        from streams.views.pdf import print_pdfs
        from streams.views.read import ViewError

        try:
            with console.status(f"printing {len(written)} page(s) as PDF with headless Chromium"):
                printed = print_pdfs(written)
        except ViewError as exc:
            console.print(Text(f"rapport: {exc}", style="red"), soft_wrap=True)
            sys.exit(1)
        console.print(f"printed {len(printed)} PDF(s) beside them, {printed[0]} first")


from streams.boards.commands import boards  # noqa: E402  (the `boards` group lives with the boards)
from streams.runtime.connect_commands import connect, notify  # noqa: E402  (connectors, notifier)

main.add_command(boards)
main.add_command(connect)
main.add_command(notify)
