"""``rapport warehouse check``: is the warehouse whole, and does it hold what the stream wrote?

Two things are compared. The warehouse's own state: parts ClickHouse detached (broken on start)
or that fail ``CHECK TABLE``, with the rows they hold (:func:`streams.sinks.warehouse.damage_report`).
And the stream's own counts: the rows the worker reports it wrote per table
(``$RAPPORT_HOME/worker-status.json``, counted after every written batch) against the rows each
table holds. Tables are ReplacingMergeTrees: merges and deduplicated retries shrink what is
stored below what was written, so a table may hold fewer rows than written, but never none when
rows were written, and never fewer than the rows still in its active parts plus the damaged ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.sinks.warehouse import DATABASE, Client, Damage, damage_report


@dataclass(frozen=True)
class TableCount:
    table: str
    written: int | None  # by the stream (worker status), None without a status
    stored: int  # latest version of every key (FINAL)
    missing: int  # rows in damaged parts


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
                t.table: {"written": t.written, "stored": t.stored, "missing": t.missing} for t in self.tables
            },
        }


def check_warehouse(client: Client, status: dict[str, Any] | None) -> CheckReport:
    """Damage (``CHECK TABLE`` included) and counts; ``status`` is the worker's status file."""
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
    for table in tables:
        (stored,) = client.query(f"SELECT count() FROM {DATABASE}.`{table}` FINAL").result_rows[0]
        count = TableCount(table, written.get(table) if status else None, int(stored), missing.get(table, 0))
        report.tables.append(count)
        if count.written and not count.stored:
            report.problems.append(
                f"{table}: the stream wrote {count.written:,} rows and the warehouse holds none"
            )
    unknown = sorted(set(written) - set(tables))
    if unknown:
        report.problems.append(
            f"the stream wrote to tables this warehouse does not have: {', '.join(unknown)}"
        )
    return report
