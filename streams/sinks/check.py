"""``rapport warehouse check``: is the warehouse whole, and does it hold what the stream wrote?

Two things are compared. The warehouse's own state: parts ClickHouse detached (broken on start)
or that fail ``CHECK TABLE``, with the rows they hold (:func:`streams.sinks.warehouse.damage_report`).
And the stream's own counts: the rows the worker reports it wrote per table
(``$RAPPORT_HOME/worker-status.json``, counted after every written batch) against the rows each
table holds. Tables are ReplacingMergeTrees: merges and deduplicated retries shrink what is
stored below what was written, so a table may hold fewer rows than written, but never none when
rows were written, and never fewer than the rows still in its active parts plus the damaged ones.
The status counts only what the running (or last) worker wrote; what every writer wrote is kept
as distinct keys per input table (:mod:`streams.sinks.written`), so an input table that holds
clearly fewer keys than were written, less what ``forget`` deleted, lost rows, however (a part
deleted outright leaves no trace inside ClickHouse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.sinks.warehouse import DATABASE, Client, Damage, damage_report
from streams.sinks.written import STANDARD_ERROR, forgotten, written_keys

# An estimate of distinct keys is within 4 standard errors (3.3 %) of the truth but for one
# check in ~30,000; a few rows of slack for tiny tables.
LOSS_TOLERANCE = 4 * STANDARD_ERROR
LOSS_SLACK_ROWS = 3


@dataclass(frozen=True)
class TableCount:
    table: str
    written: int | None  # by the stream (worker status), None without a status
    stored: int  # latest version of every key (FINAL)
    missing: int  # rows in damaged parts
    expected: int | None = None  # distinct keys every writer wrote, less forget's deletions


@dataclass
class CheckReport:
    damage: Damage
    tables: list[TableCount] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": self.problems,
            "damage": {
                "detached": [list(d) for d in self.damage.detached],
                "broken": [list(b) for b in self.damage.broken],
            },
            "tables": {
                t.table: {
                    "written": t.written,
                    "stored": t.stored,
                    "missing": t.missing,
                    "expected": t.expected,
                }
                for t in self.tables
            },
        }


def check_warehouse(
    client: Client, status: dict[str, Any] | None, written_dir: Path | None = None
) -> CheckReport:
    """Damage (``CHECK TABLE`` included) and counts; ``status`` is the worker's status file,
    ``written_dir`` the writers' distinct keys (``Settings.written_dir``)."""
    damage = damage_report(client, check_parts=True)
    report = CheckReport(damage)
    if damage:
        report.problems.append(damage.line())
    written: dict[str, int] = dict((status or {}).get("rows_written") or {})
    missing = damage.missing_rows()
    tables = [
        t
        for (t,) in client.query(
            f"SELECT name FROM system.tables WHERE database = '{DATABASE}' AND engine LIKE '%MergeTree' "
            "AND name != 'schema_migrations' ORDER BY name"
        ).result_rows
    ]
    keys = written_keys(written_dir) if written_dir else {}
    gone = forgotten(written_dir) if written_dir else {}
    for table in tables:
        (stored,) = client.query(f"SELECT count() FROM {DATABASE}.`{table}` FINAL").result_rows[0]
        expected = max(0, round(keys[table]) - gone.get(table, 0)) if table in keys else None
        count = TableCount(
            table, written.get(table) if status else None, int(stored), missing.get(table, 0), expected
        )
        report.tables.append(count)
        if count.written and not count.stored:
            report.problems.append(
                f"{table}: the stream wrote {count.written:,} rows and the warehouse holds none"
            )
        elif expected is not None and count.stored < expected * (1 - LOSS_TOLERANCE) - LOSS_SLACK_ROWS:
            report.problems.append(
                f"{table}: about {expected:,} distinct rows were written and the warehouse holds "
                f"{count.stored:,}: rows were lost; replay the inputs to restore them"
            )
    unknown = sorted(set(written) - set(tables))
    if unknown:
        report.problems.append(
            f"the stream wrote to tables this warehouse does not have: {', '.join(unknown)}"
        )
    return report
