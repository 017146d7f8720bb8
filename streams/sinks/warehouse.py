"""The ClickHouse warehouse: connect (chDB embedded or a server), migrate, and write row batches.

One code path for both engines: clickhouse-connect speaks to chDB in-process
(``chdb:///path``) and to a server over HTTP (``http://host:8123``), with the same SQL.

Writes are idempotent twice over: tables are ReplacingMergeTrees keyed by stable ids, and every
insert carries an ``insert_deduplication_token`` derived from the input offsets and the rows, so
a retried batch is dropped by the engine. :class:`Sink` retries failed writes with backoff until they
land; the caller commits offsets only after :meth:`Sink.write` returns.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import unquote

import clickhouse_connect
import orjson

from streams.config import credentials, redacted
from streams.contracts import contracts_dir
from streams.sinks.written import WrittenKeys

log = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE = "rapport"

# The ReplacingMergeTree key of each table: rows with the same key are one logical row, and
# within a batch only the highest version per key needs writing.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "contacts": ("email",),
    "opportunities": ("opportunity_id",),
    "interactions": ("account_id", "interaction_id"),
    "meeting_preparedness": ("account_id", "meeting_id"),
    "interaction_value": ("account_id", "interaction_id"),
    "account_health": ("account_id", "as_of"),
    "alerts": ("account_id", "alert_id"),
    "rejected_events": ("rejected_id",),
    "sellers": ("seller_id",),
}


# Tables the warehouse fills itself from a table's inserts (materialized views): what is deleted
# from the table must be deleted from them too. Keyed by account, as the scores they summarise.
SUMMARIES: dict[str, tuple[str, ...]] = {
    "account_health": ("account_health_monthly", "account_health_by_day")
}


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used; the message says which URL and what to do."""


class Client(Protocol):
    """The part of clickhouse-connect's client Rapport uses (tests wrap it to inject faults)."""

    def command(self, cmd: str, parameters: Any = None, settings: Any = None) -> Any: ...

    def query(self, query: str, parameters: Any = None, settings: Any = None) -> Any: ...

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str] = ...,
        database: str = ...,
        column_oriented: bool = ...,
        settings: Any = None,
    ) -> Any: ...

    def close(self) -> None: ...


def connect(url: str) -> Client:
    """A client for ``chdb:///path`` (creates the folder) or ``http(s)://…`` ClickHouse. The
    first connection of a process to a warehouse reports its damage, if any, in one log line."""
    client = _open(url)
    if url not in _reported:
        _reported.add(url)
        try:
            damage = damage_report(client)
        except Exception as exc:  # a user without access to system tables: not a reason to fail
            log.debug("no damage report for %s: %s", redacted(url), exc)
        else:
            if damage:
                log.error("%s", damage.line())
    return client


_reported: set[str] = set()
# Why ClickHouse detaches a part. "ignored" parts are covered by a merged part that holds their
# rows (left behind by a crash during a merge): no data is missing.
HARMLESS_DETACH_REASONS = frozenset({"ignored"})


@dataclass(frozen=True)
class Damage:
    """Parts of the warehouse that queries no longer read, and the rows they hold.

    ClickHouse detaches a part it finds broken when it starts (``broken-on-start``: a truncated
    or missing file) and goes on without it: a corrupted part took 580 of 7,256 health rows out
    of every view and board, and nothing said so (issue 18). ``CHECK TABLE`` finds parts whose
    checksums no longer match before a restart detaches them.
    """

    detached: tuple[tuple[str, str, str, int | None], ...] = ()  # table, part, reason, rows
    broken: tuple[tuple[str, str, str], ...] = ()  # table, part, CHECK TABLE's message

    def __bool__(self) -> bool:
        return bool(self.detached or self.broken)

    def missing_rows(self) -> dict[str, int]:
        """Rows per table in detached parts (those whose row count could be read)."""
        rows: dict[str, int] = {}
        for table, _part, _reason, count in self.detached:
            rows[table] = rows.get(table, 0) + (count or 0)
        return rows

    def line(self) -> str:
        if not self:
            return "warehouse: no detached or broken parts"
        what = [f"{table}: {part} ({reason})" for table, part, reason, _ in self.detached]
        what += [f"{table}: {part} (fails CHECK TABLE)" for table, part, _ in self.broken]
        missing = ", ".join(f"{n:,} {table} rows" for table, n in self.missing_rows().items() if n)
        return (
            f"WAREHOUSE DAMAGED: {len(what)} part(s) not read by any query"
            + (f" ({missing} missing)" if missing else "")
            + f": {'; '.join(what)}. Views and boards are incomplete: restore from a backup or "
            "replay the inputs; `rapport warehouse check` verifies"
        )


def _rows_in(path: str) -> int | None:
    try:
        return int((Path(path) / "count.txt").read_text().strip())
    except (OSError, ValueError):
        return None  # a server's disk: the path is not on this machine


def damage_report(client: Client, check_parts: bool = False) -> Damage:
    """Detached parts of the ``rapport`` tables (and with ``check_parts``, parts failing
    ``CHECK TABLE``, which reads every part: slow on a large warehouse)."""
    detached = tuple(
        (table, name, reason or "detached by hand", _rows_in(path))
        for table, name, reason, path in client.query(
            f"SELECT table, name, reason, path FROM system.detached_parts WHERE database = '{DATABASE}' "
            "ORDER BY table, name"
        ).result_rows
        if reason not in HARMLESS_DETACH_REASONS
    )
    broken: list[tuple[str, str, str]] = []
    if check_parts:
        tables = client.query(
            f"SELECT name FROM system.tables WHERE database = '{DATABASE}' AND engine LIKE '%MergeTree'"
        ).result_rows
        for (table,) in tables:
            # one TSV line per part: name, passed (1/0), message; nothing for a table without parts
            answer = client.command(
                f"CHECK TABLE {DATABASE}.`{table}`", settings={"check_query_single_value_result": 0}
            )
            text = "\t".join(map(str, answer)) if isinstance(answer, list | tuple) else str(answer or "")
            for line in text.splitlines():
                part, passed, message = ([*line.strip("\t").split("\t"), "", ""])[:3]
                if part and passed != "1":
                    broken.append((table, part, message[:300]))
    return Damage(detached, tuple(broken))


def _open(url: str) -> Client:
    try:
        if url.startswith("chdb://"):
            return _open_chdb(url)
        bare, user, password = credentials(url)  # passed apart: a '/' in a password broke the DSN
        return cast(
            Client,
            clickhouse_connect.get_client(
                dsn=bare,
                username=unquote(user) if user else None,
                password=unquote(password or ""),
                connect_timeout=5,  # a server that does not answer fails within seconds
            ),
        )
    except Exception as exc:
        hint = (
            "another process (a running `rapport up` or demo worker) may hold this chDB folder; "
            "stop it or point RAPPORT_WAREHOUSE_URL elsewhere"
            if url.startswith("chdb://")
            else "check the server is up, and RAPPORT_WAREHOUSE_URL's address and user/password"
        )
        raise WarehouseError(redacted(f"cannot open warehouse {url}: {exc}; {hint}")) from exc


def _open_chdb(url: str, timeout_s: float = 10.0) -> Client:
    """The folder itself, or the read endpoint of the worker holding it. chDB lets one process
    open a folder, so while another holds it this waits up to ``timeout_s`` for either: a worker
    that has not served its endpoint yet, or a reader's short hold ending (without the wait, a
    `rapport warehouse query` opening the folder just as `up` starts its worker fails the worker)."""
    import time

    from streams.sinks.read_endpoint import live_url

    path = Path(url.removeprefix("chdb://"))
    path.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        if live := live_url(url):  # a worker holds this folder: read through it
            return cast(Client, clickhouse_connect.get_client(dsn=live, compress=False))
        try:
            return cast(Client, clickhouse_connect.get_client(dsn=f"chdb://{path}"))
        except Exception:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


class DiskFull(WarehouseError):
    """A write failed for lack of disk space; retrying would not help."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is ENOSPC, as an OSError or in ClickHouse's text."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        text = str(seen)
        if "No space left on device" in text or "NOT_ENOUGH_SPACE" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        lines = [line for line in self.sql.splitlines() if not line.strip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrations(folder: Path | None = None) -> list[Migration]:
    """``schemas/warehouse/NNN_name.sql`` in order."""
    folder = folder or contracts_dir("warehouse")
    found = []
    for path in sorted(folder.glob("[0-9][0-9][0-9]_*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text()))
    return found


def migrate(client: Client) -> list[str]:
    """Apply migrations not yet recorded in ``rapport.schema_migrations``; returns their names.

    Idempotent: statements are ``IF NOT EXISTS`` and applied versions are skipped. A recorded
    migration whose file changed since is an error (write a new migration instead).
    """
    client.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {DATABASE}.schema_migrations "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {
        int(v): c
        for v, c in client.query(
            f"SELECT version, argMax(checksum, applied_at) FROM {DATABASE}.schema_migrations GROUP BY version"
        ).result_rows
    }
    done = []
    for migration in migrations():
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise WarehouseError(
                    f"migration {migration.version:03d}_{migration.name}.sql changed after it was "
                    "applied; add a new numbered migration instead of editing an applied one"
                )
            continue
        for statement in migration.statements():
            client.command(statement)
        client.insert(
            f"{DATABASE}.schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        done.append(f"{migration.version:03d}_{migration.name}")
    return done


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def same_instant(stored: datetime, written: datetime) -> bool:
    """Equal as DateTime64(3) keeps them (the warehouse drops what is below a millisecond)."""
    return int(stored.timestamp() * 1000) == int(written.timestamp() * 1000)


def collapse(table: str, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep only the highest-version row per table key (what FINAL would keep anyway)."""
    key_columns = TABLE_KEYS[table]
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[c] for c in key_columns)
        held = best.get(key)
        if held is None or row.get("version", 0) >= held.get("version", 0):
            best[key] = row
    return list(best.values())


def dedup_token(origin: str, table: str, rows: Sequence[dict[str, Any]]) -> str:
    """A token for one batch of input (topic/partition/offset ranges), one table and the rows.

    The rows are part of it because the same input can give other rows: a worker killed after
    writing a batch and restarted rebuilds its event-time watermarks and pending days, so the
    same batch may settle other events. With a token of the input alone ClickHouse drops that
    second insert whole while the states stored next say the events were written; the likely
    cause of 8 of 49,554 interactions missing after the kill test (``tests/runtime/test_kill.py``,
    once in CI on 2026-12-03). The same rows again still give the same token and are dropped.
    Hashing costs about 1 µs per row (20,000 interaction rows), against about 110 µs per event."""
    digest = hashlib.sha256(f"{origin}|{table}|".encode())
    digest.update(orjson.dumps(rows, default=str))
    return digest.hexdigest()


def backoff(base: float = 0.2, cap: float = 10.0) -> Iterator[float]:
    """Exponential backoff delays with jitter, forever."""
    attempt = 0
    while True:
        yield min(cap, base * 2**attempt) * (0.5 + random.random() / 2)
        attempt += 1


@dataclass
class WriteStats:
    rows: dict[str, int]
    retries: int = 0


class Sink:
    """Writes batches of rows to the warehouse, retrying each table until it lands."""

    def __init__(
        self,
        client: Client,
        on_retry: Callable[[str, Exception, float], None] | None = None,
        fail_on_full_disk: bool = False,
        written: WrittenKeys | None = None,
    ) -> None:
        self.client = client
        self.on_retry = on_retry or self._log_retry
        self.written = written  # the distinct keys written, for `rapport warehouse check`
        # replay stops on a full disk (retrying cannot help); the live worker keeps retrying,
        # because a write that escapes its loop body gets its offsets committed unwritten
        self.fail_on_full_disk = fail_on_full_disk

    @staticmethod
    def _log_retry(table: str, exc: Exception, delay: float) -> None:
        log.warning("warehouse write to %s failed (%s); retrying in %.1fs", table, exc, delay)

    def _insert(self, table: str, rows: list[dict[str, Any]], token: str) -> None:
        # Column-oriented: one list per column is cheaper to build than one per row, and
        # clickhouse-connect serialises columns without pivoting rows first (bench: -37% CPU).
        columns = list(rows[0])
        self.client.insert(
            f"{DATABASE}.{table}",
            [[row[c] for row in rows] for c in columns],
            column_names=columns,
            column_oriented=True,
            settings={"insert_deduplication_token": token},
        )
        if self.written is not None:
            self.written.add(table, rows)

    def cancels(self, interactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows of ``interactions_by_time`` that cancel the time an interaction no longer has
        (schemas/warehouse/007_interactions_by_time.sql): for each row whose stored latest
        version has another time, the losing time with the winning version (a tie goes to the
        row written last, as in ReplacingMergeTree). Inserted before the interactions, so a crash
        between the two repeats the same lookup; emails never move and are not looked up."""
        movable = [r for r in interactions if r["channel"] != "email"]
        if not movable:
            return []
        accounts = ", ".join(sorted({quote(r["account_id"]) for r in movable}))
        ids = ", ".join(sorted({quote(r["interaction_id"]) for r in movable}))
        stored = {
            (account, iid): (at, version)
            for account, iid, at, version in self.client.query(
                f"SELECT account_id, interaction_id, occurred_at, version FROM {DATABASE}.interactions FINAL "
                f"WHERE account_id IN ({accounts}) AND interaction_id IN ({ids})"
            ).result_rows
        }
        found = []
        for row in movable:
            held = stored.get((row["account_id"], row["interaction_id"]))
            if held is None or same_instant(held[0], row["occurred_at"]):
                continue
            at, version = (
                (held[0], row["version"]) if row["version"] >= held[1] else (row["occurred_at"], held[1])
            )
            found.append(
                {
                    "occurred_at": at,
                    "interaction_id": row["interaction_id"],
                    "account_id": row["account_id"],
                    "channel": row["channel"],
                    "automated": row["automated"],
                    "version": version,
                    "is_deleted": 1,
                }
            )
        return found

    def _plan(
        self, rows: dict[str, list[dict[str, Any]]], origin: str
    ) -> list[tuple[str, list[dict[str, Any]], str]]:
        planned = []
        for table, table_rows in sorted(rows.items()):
            if table_rows:
                collapsed = collapse(table, table_rows)
                if table == "interactions" and (cancelling := self.cancels(collapsed)):
                    summary = "interactions_by_time"
                    planned.append((summary, cancelling, dedup_token(origin, summary, cancelling)))
                planned.append((table, collapsed, dedup_token(origin, table, collapsed)))
        return planned

    async def write(self, rows: dict[str, list[dict[str, Any]]], origin: str) -> WriteStats:
        """Write every table's rows; on failure wait (without blocking the loop) and retry."""
        stats = WriteStats(rows={})
        # the plan reads the warehouse (Sink.cancels): retried as the inserts are
        plan = await self._until_done("interactions", stats, self._plan, rows, origin)
        for table, table_rows, token in plan:
            await self._until_done(table, stats, self._insert, table, table_rows, token)
            stats.rows[table] = len(table_rows)
        return stats

    async def _until_done(self, table: str, stats: WriteStats, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` in a thread, retried with backoff until it works (a full disk stops
        replay instead: retrying cannot help)."""
        delays = backoff()
        while True:
            try:
                return await asyncio.to_thread(call, *args)
            except Exception as exc:
                if self.fail_on_full_disk and disk_full(exc):
                    raise DiskFull(
                        f"the warehouse's disk is full (writing {table}); every insert either "
                        "landed whole or not at all: free space and run the same command again "
                        "(writes are idempotent)"
                    ) from exc
                delay = next(delays)
                stats.retries += 1
                self.on_retry(table, exc, delay)
                await asyncio.sleep(delay)

    def write_now(self, rows: dict[str, list[dict[str, Any]]], origin: str) -> WriteStats:
        """The same write for callers without an event loop (``replay``)."""
        return asyncio.run(self.write(rows, origin))
