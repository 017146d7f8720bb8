"""``rapport demo`` and the one-shot pipeline behind ``ingest``: produce, drain, verify.

The demo generates a dataset, runs it through the embedded broker and a faust worker into the
warehouse, waits until every event is processed, then checks the warehouse holds every produced
interaction exactly once and prints what it found.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from streams.config import TOPIC_DEADLETTER, Settings
from streams.contracts import ContractError
from streams.identity.resolver import Resolver
from streams.runtime.broker import BrokerError
from streams.runtime.producer import EventProducer
from streams.runtime.stack import Stack
from streams.sinks.warehouse import Client, connect
from streams.sources.dataset import Rejection, SourceRecord, read_dataset, write_dataset
from streams.sources.reader import Tally
from streams.sources.synthetic import SELLER_DOMAIN, generate


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@dataclass
class Expected:
    """What a dataset should leave in the warehouse, computed without the pipeline."""

    produced: int = 0
    rejected: int = 0
    interaction_ids: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)


def expected_from(items: Iterable[SourceRecord | Rejection], resolver: Resolver) -> Expected:
    expected = Expected()
    for item in items:
        if isinstance(item, Rejection):
            expected.rejected += 1
            continue
        expected.produced += 1
        try:
            resolved = resolver.resolve(item.envelope)
        except ContractError:
            expected.rejected += 1
            continue
        for out in resolved:
            if out.envelope.schema == "interaction/1":
                expected.interaction_ids.add(out.envelope.payload["interaction_id"])
            expected.accounts.add(out.account_id)
    return expected


def run_through_pipeline(
    items: Callable[[], Iterable[SourceRecord | Rejection]],
    settings: Settings,
    console: Console,
    repeat: int = 1,
    workers: int = 1,
    timeout_s: float = 600.0,
    tally: Tally | None = None,
) -> dict[str, Any]:
    """Start broker and workers, produce ``items()`` ``repeat`` times, wait until drained."""
    total = sum(1 for _ in items()) * repeat
    with Stack(settings, workers=workers) as stack:
        stack.start_workers()
        stack.check_disk()  # a full disk fails every produce, after the producer's 120 s timeout
        with progress_bar(console) as bar:
            task = bar.add_task("producing", total=total)
            try:
                with EventProducer(stack.bootstrap, Resolver(settings.seller_domains)) as producer:
                    for _ in range(repeat):
                        producer.send_all(items(), tally, progress=lambda: bar.advance(task))
            except BrokerError:
                stack.check_disk()  # name the cause when it is the disk
                raise
            valid = sum(n for topic, n in producer.sent.items() if topic != TOPIC_DEADLETTER)
            scoring = bar.add_task("processing", total=valid)
            status = stack.wait_drained(
                valid,
                timeout_s=timeout_s,
                progress=lambda done, _total: bar.update(scoring, completed=min(done, valid)),
            )
    return status


def summary_table(client: Client) -> Table:
    table = Table(title="Rapport warehouse (database rapport)")
    table.add_column("what")
    table.add_column("count", justify="right")
    queries = [
        ("accounts from the CRM", "SELECT countIf(provisional = 0) FROM rapport.accounts FINAL"),
        ("accounts from email domains only", "SELECT countIf(provisional = 1) FROM rapport.accounts FINAL"),
        ("accounts with interactions", "SELECT uniqExact(account_id) FROM rapport.interactions FINAL"),
        ("interactions", "SELECT count() FROM rapport.interactions FINAL"),
        (
            "  automated (excluded from scoring)",
            "SELECT countIf(automated = 1) FROM rapport.interactions FINAL",
        ),
        ("contacts", "SELECT count() FROM rapport.contacts FINAL"),
        ("opportunities", "SELECT count() FROM rapport.opportunities FINAL"),
        ("health snapshots (account × day)", "SELECT count() FROM rapport.account_health FINAL"),
        ("meetings scored for preparedness", "SELECT count() FROM rapport.meeting_preparedness FINAL"),
        (
            "  very prepared (≥ 75)",
            "SELECT countIf(tier = 'very_prepared') FROM rapport.meeting_preparedness FINAL",
        ),
        ("interactions valued", "SELECT count() FROM rapport.interaction_value FINAL"),
        ("alerts raised", "SELECT count() FROM rapport.alerts FINAL"),
        ("  still open", "SELECT countIf(status = 'open') FROM rapport.alerts FINAL"),
        ("rejected events", "SELECT count() FROM rapport.rejected_events FINAL"),
    ]
    for label, sql in queries:
        table.add_row(label, f"{client.query(sql).result_rows[0][0]:,}")
    tiers = client.query(
        "SELECT tier, count() FROM (SELECT account_id, argMax(tier, (as_of, version)) AS tier "
        "FROM rapport.account_health FINAL GROUP BY account_id) GROUP BY tier ORDER BY tier"
    ).result_rows
    for tier, count in tiers:
        table.add_row(f"accounts now {tier}", f"{count:,}")
    return table


def run_demo(settings: Settings, accounts: int, seed: int, console: Console) -> int:
    """The whole flow on embedded defaults; returns the process exit code."""
    settings = settings.with_seller_domains([SELLER_DOMAIN])
    if settings.kafka_bootstrap:
        console.print(
            f"[yellow]RAPPORT_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: the demo uses that broker"
        )
    log_to_file(settings.home / "demo.log")
    folder = settings.home / "demo-data"
    with console.status(f"generating {accounts} accounts (seed {seed})"):
        events, labels = generate(accounts, seed)
        write_dataset(folder, events, labels)
    console.print(f"generated {len(events):,} events for {accounts} accounts in {folder}")
    expected = expected_from(read_dataset(folder), Resolver(settings.seller_domains))
    run_through_pipeline(lambda: read_dataset(folder), replace(settings), console)

    client = connect(settings.warehouse_url)
    console.print(summary_table(client))
    wanted = len(expected.interaction_ids)
    stored, distinct = client.query(
        "SELECT count(), uniqExact(interaction_id) FROM rapport.interactions FINAL "
        "WHERE interaction_id IN {ids:Array(String)}",
        parameters={"ids": sorted(expected.interaction_ids)},
    ).result_rows[0]
    if stored != wanted or distinct != stored:
        found = {
            r[0]
            for r in client.query(
                "SELECT DISTINCT interaction_id FROM rapport.interactions "
                "WHERE interaction_id IN {ids:Array(String)}",
                parameters={"ids": sorted(expected.interaction_ids)},
            ).result_rows
        }
        missing = sorted(expected.interaction_ids - found)[:5]
        console.print(f"missing (first 5): {missing}")
        console.print(
            f"[red]warehouse holds {stored:,} rows ({distinct:,} distinct ids) of the {wanted:,} "
            f"interactions produced. See {settings.home}/worker-0.log"
        )
        return 1
    console.print(f"[green]all {wanted:,} produced interactions are in the warehouse exactly once.")
    console.print(next_steps(settings, client), highlight=False, soft_wrap=True)
    return 0


def rapport_command(home: Path) -> str:
    """How to run `rapport` again from this shell: the script running now, else the one in this
    Python's bin folder, else ``python -m streams``; with RAPPORT_HOME when it was set."""
    script = Path(sys.argv[0])
    if script.name == "rapport" and script.exists():
        command = shlex.quote(str(script.absolute()))
    elif (Path(sys.executable).parent / "rapport").exists():
        command = shlex.quote(str(Path(sys.executable).parent / "rapport"))
    else:
        command = f"{shlex.quote(sys.executable)} -m streams"
    if "RAPPORT_HOME" in os.environ:
        command = f"RAPPORT_HOME={shlex.quote(str(home))} {command}"
    return command


def next_steps(settings: Settings, client: Client) -> Text:
    """The three commands to run next, on the account in the worst shape, and where reviews go."""
    worst = client.query(
        "SELECT account_id FROM rapport.account_health FINAL ORDER BY as_of DESC, score, account_id LIMIT 1"
    ).result_rows
    rapport = rapport_command(settings.home)
    reviews = settings.home / "reviews"
    return Text(
        "Next, try:\n"
        f"  {rapport} accounts --at-risk\n"
        f"  {rapport} explain account {shlex.quote(worst[0][0] if worst else 'ID')}\n"
        f"  {rapport} review --all --out {shlex.quote(str(reviews))}\n"
        f"Review pages would go to {reviews} (open index.html; add --pdf for a PDF of each, "
        f"about 2 s a page). Logs: {settings.home / 'demo.log'}"
    )


def log_to_file(path: Path) -> None:
    """Third-party log records and warnings (kafka-python's "blocking the event loop", …) go to
    ``path``, not the console the demo draws its progress on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    logging.captureWarnings(True)
