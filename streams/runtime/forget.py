"""``rapport forget EMAIL``: remove one person from the warehouse and the stream state.

What goes: their ``contacts`` and ``sellers`` rows; their address from every other row that
mentions it (interactions' buyers and sellers, details, owners), and the interactions where they
were the only buyer; dead letters whose original bytes mention them. Scores cannot be edited
row by row, so every affected account's score rows are deleted and recomputed by the scoring
core from what remains (interactions and CRM rows rebuilt as envelopes, in event-time order,
from an empty store). The recomputed account states replace the old ones in the stream state.

Run it with the workers stopped: on chDB the worker holds the warehouse folder, and a running
worker would write its in-memory state (with the person) back. With an external Kafka the new
states are appended to the table's changelog topic and the local RocksDB cache is removed, so
the next worker rebuilds its state from the changelog; with the embedded broker nothing
survives a restart anyway. Messages already on ``raw`` and ``interactions`` keep the address
until the topics' retention removes them (see docs/design.md, "Forgetting a person").
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.config import Settings
from streams.contracts import ContractError, Envelope, format_time, make
from streams.runtime.changelog import ChangelogStore
from streams.runtime.loop import Ports, Step, run
from streams.runtime.ports import Clock, DictStore, NoPublisher, Rows, SystemClock
from streams.runtime.status import read_status
from streams.scoring.engine import Scoring
from streams.scoring.profile import Profile, load_profile
from streams.sinks.warehouse import DATABASE, TABLE_KEYS, Client, Sink, WriteStats

# Tables whose rows are inputs (entities and interactions); every other table holds scores.
INPUT_TABLES = ("accounts", "contacts", "opportunities", "sellers", "interactions")
# Rows that *are* the person: deleted outright.
PERSON_ROWS = {"contacts": "email", "sellers": "email"}
ADDRESS = re.compile(r"^[a-z0-9._%+=!#&*/?^`{|}~-]+@[a-z0-9.-]+$")


class ForgetError(ValueError):
    """The person cannot be forgotten now; the message says why and what to do."""


@dataclass
class ForgetReport:
    """What ``forget`` removed and recomputed."""

    email: str
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows removed
    rewritten: dict[str, int] = field(default_factory=dict)  # table -> rows kept without the address
    rescored: list[str] = field(default_factory=list)  # accounts whose scores were recomputed
    score_rows: dict[str, int] = field(default_factory=dict)  # table -> recomputed rows written
    state: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "deleted": self.deleted,
            "rewritten": self.rewritten,
            "rescored": self.rescored,
            "score_rows": self.score_rows,
            "state": self.state,
        }


def checked_address(email: str) -> str:
    address = email.strip().lower()
    if not ADDRESS.match(address):
        raise ForgetError(f"{email!r} is not an email address like ann@example.com")
    return address


def mentions(client: Client, table: str, address: str) -> str:
    """A WHERE condition: any column of ``table``, as text, contains ``address``."""
    columns = client.query(
        f"SELECT name FROM system.columns WHERE database = '{DATABASE}' AND table = '{table}'"
    ).result_rows
    return " OR ".join(f"position(lower(toString(`{name}`)), '{address}') > 0" for (name,) in columns)


def scrub(value: Any, address: str) -> Any:
    """``value`` without ``address``: dropped from lists and dict keys, blanked in strings."""
    if isinstance(value, str):
        if address not in value.lower():
            return value
        if value.lower() == address:
            return ""
        try:  # JSON text (details, explanations)
            return orjson.dumps(scrub(orjson.loads(value), address)).decode()
        except orjson.JSONDecodeError:
            return re.sub(re.escape(address), "", value, flags=re.IGNORECASE)
    if isinstance(value, list):
        return [scrub(v, address) for v in value if not (isinstance(v, str) and v.lower() == address)]
    if isinstance(value, dict):
        return {k: scrub(v, address) for k, v in value.items() if k.lower() != address}
    return value


def forget(email: str, settings: Settings, client: Client, clock: Clock | None = None) -> ForgetReport:
    """Remove ``email`` from the warehouse behind ``client`` and from the stream state."""
    clock = clock or SystemClock()
    address = checked_address(email)
    refuse_while_running(settings)
    report = ForgetReport(address)
    found: dict[str, list[dict[str, Any]]] = {}
    for table in TABLE_KEYS:
        result = client.query(
            f"SELECT * FROM {DATABASE}.{table} FINAL WHERE {mentions(client, table, address)}"
        )
        found[table] = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    accounts = sorted({row["account_id"] for rows in found.values() for row in rows if row.get("account_id")})
    rewrites: dict[str, list[dict[str, Any]]] = {}
    for table in INPUT_TABLES:
        for row in found[table]:
            if table in PERSON_ROWS and str(row[PERSON_ROWS[table]]).lower() == address:
                continue
            clean = {k: scrub(v, address) for k, v in row.items()}
            if table == "interactions" and address in row["buyers"] and not clean["buyers"]:
                continue  # they were the only buyer: the interaction was theirs alone
            rewrites.setdefault(table, []).append(clean)
    # The clean rows go in first (same keys and versions, so they win under FINAL) and no longer
    # mention the address, so the deletes below remove only the old rows: input rows are never
    # missing, even if forget stops half way. (Score rows deleted before such a stop come back
    # with a replay of the sources; running forget again does not know the accounts any more.)
    sink = Sink(client)
    origin = f"forget:{address}:{int(clock.now() * 1e9)}"
    sink.write_now(rewrites, origin + ":inputs")
    for table in TABLE_KEYS:
        condition = mentions(client, table, address)
        if table not in INPUT_TABLES and table != "rejected_events" and accounts:
            condition += f" OR account_id IN ({', '.join(quote(a) for a in accounts)})"
        before = count(client, table)
        client.command(
            f"ALTER TABLE {DATABASE}.{table} DELETE WHERE {condition}", settings={"mutations_sync": 2}
        )
        rewritten = len(rewrites.get(table, []))
        removed = len(found[table]) - rewritten if table in INPUT_TABLES else before - count(client, table)
        if removed:
            report.deleted[table] = removed
        if rewritten:
            report.rewritten[table] = rewritten
    profile = load_profile(settings.scoring_profile)
    states = rescore(client, accounts, settings.allowed_lateness_s, profile, sink, origin, report, clock)
    report.state = replace_state(settings, states)
    return report


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def count(client: Client, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {DATABASE}.{table}").result_rows[0][0])


def refuse_while_running(settings: Settings) -> None:
    status = read_status(settings.status_file) or {}
    pid = status.get("pid")
    if (settings.state_dir / "worker-running").exists() and isinstance(pid, int) and alive(pid):
        raise ForgetError(
            f"a worker (pid {pid}) is running on {settings.home}; stop `rapport up` first, "
            "then run forget, then start it again"
        )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ScoresOnly:
    """A row sink that writes only score tables: the input rows were rewritten above."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.written = WriteStats(rows={})

    async def write(self, rows: Rows, origin: str) -> WriteStats:
        self.written = await self.sink.write({t: r for t, r in rows.items() if t not in INPUT_TABLES}, origin)
        return self.written


def rescore(
    client: Client,
    accounts: list[str],
    lateness_s: float,
    profile: Profile,
    sink: Sink,
    origin: str,
    report: ForgetReport,
    clock: Clock,
) -> dict[str, dict[str, Any]]:
    """Recompute the score tables of ``accounts`` from their remaining input rows."""
    if not accounts:
        return {}
    records = sorted(input_envelopes(client, accounts), key=lambda r: (r[1].occurred_at, r[1].event_id))
    store, scores = DictStore(), ScoresOnly(sink)
    ports = Ports(store, scores, NoPublisher(), clock)
    # One step from an empty store; windows close as the live idle timer and replay close them:
    # on the clock.
    step = Step(records, eof=True, origin=origin + ":scores")
    asyncio.run(run([step], Scoring(ports.store, lateness_s, profile), ports))
    report.score_rows = scores.written.rows
    report.rescored = accounts
    return dict(store)


def rows_of(client: Client, table: str, accounts: Iterable[str]) -> list[dict[str, Any]]:
    listed = ", ".join(quote(a) for a in accounts)
    result = client.query(f"SELECT * FROM {DATABASE}.{table} FINAL WHERE account_id IN ({listed})")
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def input_envelopes(client: Client, accounts: list[str]) -> list[tuple[str, Envelope]]:
    """The accounts' remaining interactions and CRM rows, as the envelopes the scorer takes."""
    records: list[tuple[str, Envelope]] = []
    for row in rows_of(client, "interactions", accounts):
        payload = {
            "interaction_id": row["interaction_id"],
            "account_id": row["account_id"],
            "occurred_at": format_time(row["occurred_at"]),
            "channel": row["channel"],
            "direction": row["direction"],
            "kind": row["kind"],
            "sellers": list(row["sellers"]),
            "buyers": list(row["buyers"]),
            "thread_id": row["thread_id"] or None,
            "in_reply_to": row["in_reply_to"] or None,
            "status": row["status"] or None,
            "automated": bool(row["automated"]),
            "match_method": row["match_method"],
            "match_confidence": float(row["match_confidence"]),
            "source_event_id": row["source_event_id"],
            "version": int(row["version"]),
            "detail": orjson.loads(row["detail"] or "{}"),
        }
        envelope = Envelope(
            "interaction/1", row["source_event_id"], "warehouse", payload["occurred_at"], payload
        )
        records.append((row["account_id"], envelope))
    for row in rows_of(client, "accounts", accounts):
        if row["provisional"]:
            continue  # written by the scorer itself, not an input
        records.append(
            (
                row["account_id"],
                crm(
                    "crm_account/1",
                    f"account:{row['account_id']}",
                    row,
                    {
                        "account_id": row["account_id"],
                        "name": row["name"],
                        "domains": list(row["domains"]),
                        "owner": row["owner"] or None,
                        "industry": row["industry"] or None,
                    },
                ),
            )
        )
    for row in rows_of(client, "contacts", accounts):
        records.append(
            (
                row["account_id"],
                crm(
                    "crm_contact/1",
                    f"contact:{row['contact_id']}",
                    row,
                    {
                        "contact_id": row["contact_id"],
                        "account_id": row["account_id"],
                        "email": row["email"],
                        "name": row["name"],
                        "title": row["title"] or None,
                        "active": bool(row["active"]),
                    },
                ),
            )
        )
    for row in rows_of(client, "opportunities", accounts):
        records.append(
            (
                row["account_id"],
                crm(
                    "crm_opportunity/1",
                    f"opportunity:{row['opportunity_id']}",
                    row,
                    {
                        "opportunity_id": row["opportunity_id"],
                        "account_id": row["account_id"],
                        "stage": row["stage"],
                        "status": row["status"],
                        "amount": float(row["amount"]),
                        "owner": row["owner"] or None,
                        "created_at": format_time(row["created_at"]),
                    },
                ),
            )
        )
    return records


def crm(schema: str, event_id: str, row: dict[str, Any], payload: dict[str, Any]) -> Envelope:
    updated_at = format_time(row["updated_at"])
    try:
        return make(
            schema,
            f"{event_id}:{updated_at}",
            row.get("source") or "warehouse",
            updated_at,
            {**payload, "updated_at": updated_at},
        )
    except ContractError as exc:
        raise ForgetError(f"cannot rebuild a {schema} record from the warehouse: {exc}") from exc


def replace_state(settings: Settings, states: dict[str, dict[str, Any]]) -> str:
    """Put the recomputed states where the next worker reads them; says what it did."""
    removed = settings.state_dir.exists()
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    cache = "local state cache removed" if removed else "no local state cache"
    if not settings.kafka_bootstrap:
        return f"{cache}; the embedded broker keeps no state between runs"
    store = ChangelogStore(settings.kafka_bootstrap, settings.app_id, settings.partitions)
    store.put(states)
    return f"{cache}; {len(states)} recomputed account states written to {store.topic}"
