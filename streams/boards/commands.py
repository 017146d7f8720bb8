"""``rapport boards``: regenerate the committed files, check them, push them to Grafana."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

console = Console(stderr=True)


@click.group()
def boards() -> None:
    """Grafana boards, alert rules and provisioning (generated into dashboards/)."""


@boards.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dashboards"),
    show_default=True,
    help="The repository's dashboards/ folder.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a committed file differs.")
def build(out: Path, check: bool) -> None:
    """Regenerate dashboards JSON and provisioning YAML from streams/boards."""
    from streams.boards.files import drift, write

    if check:
        changed = drift(out)
        if changed:
            console.print(
                f"[red]{len(changed)} generated file(s) in {out} differ from streams/boards: "
                f"{', '.join(changed)}; run `rapport boards build` and commit the result"
            )
            sys.exit(1)
        console.print(f"{out}: up to date")
        return
    touched = write(out)
    console.print(f"{out}: {'wrote ' + ', '.join(touched) if touched else 'up to date'}")


@boards.command("push")
@click.option("--grafana-url", required=True, help="e.g. http://localhost:3000")
@click.option("--token", envvar="GRAFANA_TOKEN", help="Service-account token (or GRAFANA_TOKEN).")
@click.option(
    "--clickhouse-host",
    default="clickhouse",
    show_default=True,
    help="ClickHouse host as Grafana reaches it (native port 9000).",
)
def push(grafana_url: str, token: str | None, clickhouse_host: str) -> None:
    """Create or update datasource, folder, boards and alerting in Grafana (idempotent).

    The datasource logs in as the read-only user `grafana` with GRAFANA_CLICKHOUSE_PASSWORD; the
    webhook contact point and policy are pushed when RAPPORT_ALERT_WEBHOOK_URL is set.
    """
    from streams.boards.alerting import WEBHOOK_URL_ENV
    from streams.boards.push import PushError
    from streams.boards.push import push as run_push

    try:
        report = run_push(
            grafana_url, token, clickhouse_host, webhook_url=os.environ.get(WEBHOOK_URL_ENV) or None
        )
    except PushError as exc:
        console.print(f"[red]rapport: {exc}")
        sys.exit(2)
    for kind in ("created", "updated", "unchanged", "skipped"):
        items = getattr(report, kind)
        if items:
            console.print(f"{kind} ({len(items)}): {', '.join(items)}")
