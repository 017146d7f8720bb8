"""``rapport forget EMAIL``: remove one person from the warehouse and the stream state.

What goes: their ``contacts`` and ``sellers`` rows; their address from every other row that
mentions it (interactions' buyers and sellers, details, owners), and the interactions where they
were the only buyer; dead letters whose original bytes mention them. Scores cannot be edited
row by row, so every affected account's score rows are deleted and recomputed by the scoring
core from what remains (interactions and CRM rows rebuilt as envelopes, in event-time order,
from an empty store). The recomputed account states replace the old ones in the stream state.

Matching is exact on the normalised address (:func:`holds`), never a substring. Afterwards no
old part or mutation file holding the person stays on disk (:func:`purge`). With the workers
stopped it runs here; while they run, :func:`request_forget` sends a ``forget/1`` control record
that the ``score`` agent applies with :func:`forget_in_warehouse` (see docs/design.md,
"Forgetting a person", for what stays in Kafka topics).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path
from typing import Any

import msgspec
import orjson

from streams.config import Settings
from streams.contracts import ContractError, Envelope, format_time, make
from streams.identity.directory import normalise_address
from streams.records import CrmAccount, CrmContact, CrmOpportunity, Interaction, payload_of
from streams.runtime.broker_data import purge_broker
from streams.runtime.changelog import ChangelogStore
from streams.runtime.children import alive
from streams.runtime.loop import Ports, Step, run
from streams.runtime.ports import Clock, DictStore, NoPublisher, Rows, SystemClock
from streams.runtime.status import read_status
from streams.scoring.engine import Scoring
from streams.scoring.profile import Profile, load_profile
from streams.sinks.warehouse import DATABASE, SUMMARIES, TABLE_KEYS, Client, Sink, WriteStats, quote
from streams.sinks.written import note_forgotten

# Tables whose rows are inputs (entities and interactions); every other table holds scores.
INPUT_TABLES = ("accounts", "contacts", "opportunities", "sellers", "interactions")
# Tables of scores, recomputed from the inputs.
SCORE_TABLES = tuple(t for t in TABLE_KEYS if t not in INPUT_TABLES and t != "rejected_events")
# Rows that *are* the person: deleted outright.
PERSON_ROWS = {"contacts": "email", "sellers": "email"}
# An address inside free text (a header block, a reason): what sits between separators around an @.
ADDRESS_IN_TEXT = re.compile(r"[^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"]+")


class ForgetError(ValueError):
    """The person cannot be forgotten now; the message says why and what to do."""


@dataclass
class ForgetReport:
    """What ``forget`` removed and recomputed."""

    email: str
    deleted: dict[str, int] = field(default_factory=dict)  # table -> stored rows removed, not rewritten
    rewritten: dict[str, int] = field(default_factory=dict)  # table -> rows kept without the address
    rescored: list[str] = field(default_factory=list)  # accounts whose scores were recomputed
    score_rows: dict[str, int] = field(default_factory=dict)  # table -> recomputed rows written
    states: dict[str, int] = field(default_factory=dict)  # states written / removed
    purged: dict[str, int] = field(default_factory=dict)  # old parts / mutation files removed
    state: str = ""
    broker: dict[str, Any] = field(default_factory=dict)  # the embedded broker's topics (BrokerPurge)

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "deleted": self.deleted,
            "rewritten": self.rewritten,
            "rescored": self.rescored,
            "score_rows": self.score_rows,
            "states": self.states,
            "purged": self.purged,
            "state": self.state,
            "broker": self.broker,
        }

    def as_text(self) -> str:
        def listed(counts: dict[str, int]) -> str:
            return ", ".join(f"{table} {n}" for table, n in sorted(counts.items())) or "none"

        return "\n".join(
            [
                f"forgot {self.email}",
                f"  rows deleted:   {listed(self.deleted)}",
                f"  rows rewritten: {listed(self.rewritten)}",
                f"  accounts rescored: {', '.join(self.rescored) or 'none'}"
                + (f" ({listed(self.score_rows)})" if self.score_rows else ""),
                f"  stream state: {listed(self.states)}; {self.state}",
                f"  on disk: {listed(self.purged)}",
                f"  broker topics: {broker_text(self.broker)}",
            ]
        )


def broker_text(purge: dict[str, Any]) -> str:
    if not purge:
        return "no embedded broker data"
    replaced = ", ".join(f"{topic} {n}" for topic, n in purge["replaced"].items()) or "none"
    return (
        f"records made tombstones: {replaced}; kept: {purge['kept_unconsumed']} not yet consumed, "
        f"{purge['kept_current']} current table values"
    )


def checked_address(email: str) -> str:
    """``email`` as the identity layer stores it (:func:`normalise_address`), if it is an RFC 5322
    addr-spec (``o'brien@acme.com``, ``ann+tag@acme.com``, ``"ann lee"@acme.com``)."""
    text = email.strip()
    problem = "" if "@" in text and text.isprintable() else "no @ or a control character"
    if not problem:
        try:
            parsed = Address(addr_spec=text)
            if not parsed.username or "." not in parsed.domain:
                problem = "no local part or no dotted domain"
        except (HeaderParseError, ValueError, IndexError) as exc:
            problem = type(exc).__name__
    if problem:
        raise ForgetError(
            f"{email!r} is not an email address like ann@example.com ({problem}); quote it for the "
            'shell, e.g. rapport forget "o\'brien@example.com"'
        )
    return normalise_address(text)


def is_address(text: str, address: str) -> bool:
    return "@" in text and normalise_address(text) == address


def holds(value: Any, address: str) -> bool:
    """Whether ``value`` holds ``address`` as a whole address: an element, a JSON key or value,
    an address token in free text; ``joann@acme.com`` and ``ann@acme.com.evil`` do not hold
    ``ann@acme.com``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if "@" not in value:
            return False
        if is_address(value, address):
            return True
        parsed = json_of(value)
        if parsed is not None:
            return holds(parsed, address)
        return any(is_address(token, address) for token in ADDRESS_IN_TEXT.findall(value))
    if isinstance(value, list | tuple):
        return any(holds(v, address) for v in value)
    if isinstance(value, dict):
        return any(holds(k, address) or holds(v, address) for k, v in value.items())
    return False


def json_of(text: str) -> Any:
    if text[:1] not in "{[":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def scrub(value: Any, address: str) -> Any:
    """``value`` without ``address``: dropped from lists and dict keys, blanked as a string or a
    token of free text; every other address, look-alikes included, stays as it was."""
    if isinstance(value, bytes):
        return scrub(value.decode("utf-8", "replace"), address).encode()
    if isinstance(value, str):
        if not holds(value, address):
            return value
        if is_address(value, address):
            return ""
        parsed = json_of(value)
        if parsed is not None:
            return orjson.dumps(scrub(parsed, address)).decode()
        return ADDRESS_IN_TEXT.sub(lambda m: "" if is_address(m.group(0), address) else m.group(0), value)
    if isinstance(value, list | tuple):
        return [scrub(v, address) for v in value if not (isinstance(v, str) and is_address(v, address))]
    if isinstance(value, dict):
        # the person's name key (a keyed hash of their display name) goes with their address
        theirs = isinstance(value.get("sender"), str) and is_address(value["sender"], address)
        return {
            k: scrub(v, address)
            for k, v in value.items()
            if not holds(k, address) and not (theirs and k == "sender_name_key")
        }
    return value


def columns_of(client: Client, table: str) -> list[str]:
    """The stored columns (a ``MATERIALIZED`` one is not part of ``SELECT *`` or of an insert)."""
    return [
        name
        for (name,) in client.query(
            "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(table)s "
            "AND default_kind != 'MATERIALIZED' ORDER BY position",
            parameters={"db": DATABASE, "table": table},
        ).result_rows
    ]


def row_hash(columns: list[str]) -> str:
    return "cityHash64(" + ", ".join(f"`{c}`" for c in columns) + ")"


def holding_rows(client: Client, table: str, address: str) -> list[tuple[int, dict[str, Any]]]:
    """Every stored version (not only ``FINAL``) of the rows of ``table`` holding ``address``,
    each with its row hash. The query names only the domain (a wide first cut, decided exactly
    here in Python), so the person's full address never enters a query text or a log."""
    columns = columns_of(client, table)
    domain = "@" + address.rpartition("@")[2]
    cut = " OR ".join(f"position(lower(toString(`{c}`)), %(domain)s) > 0" for c in columns)
    listed = ", ".join(f"`{c}`" for c in columns)
    result = client.query(
        f"SELECT {row_hash(columns)}, {listed} FROM {DATABASE}.{table} WHERE {cut}",
        parameters={"domain": domain},
    )
    found = []
    for values in result.result_rows:
        row = dict(zip(columns, values[1:], strict=True))
        if any(holds(v, address) for v in row.values()):
            found.append((int(values[0]), row))
    return found


def forget(email: str, settings: Settings, client: Client, clock: Clock | None = None) -> ForgetReport:
    """Remove ``email`` from the warehouse behind ``client`` and from the stream state."""
    address = checked_address(email)
    refuse_while_running(settings)
    report, states = forget_in_warehouse(address, settings, client, clock or SystemClock())
    report.state = replace_state(settings, states, report)
    report.broker = forget_in_broker(settings, address)
    return report


def forget_in_broker(settings: Settings, address: str) -> dict[str, Any]:
    """Tombstones over the embedded broker's stored records that hold ``address``, once the
    recomputed states are in its changelog (streams.runtime.broker_data); ``{}`` without one."""
    data_dir = settings.broker_data_dir
    if not data_dir.is_dir():
        return {}
    return purge_broker(data_dir, settings.app_id, address, holds).as_dict()


def forget_in_warehouse(
    address: str, settings: Settings, client: Client, clock: Clock
) -> tuple[ForgetReport, dict[str, dict[str, Any] | None]]:
    """Delete and rewrite the rows holding ``address`` (already normalised), rescore its
    accounts, purge old parts. Returns the report and each rescored account's new state
    (``None``: nothing of the account is left to score)."""
    report = ForgetReport(address)
    found = {table: holding_rows(client, table, address) for table in TABLE_KEYS}
    accounts = sorted(
        {row["account_id"] for rows in found.values() for _, row in rows if row.get("account_id")}
    )
    rewrites: dict[str, list[dict[str, Any]]] = {}
    for table in INPUT_TABLES:
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for _, row in found[table]:
            key = tuple(row[c] for c in TABLE_KEYS[table])
            if key not in latest or row["version"] >= latest[key]["version"]:
                latest[key] = row
        for row in latest.values():
            if table in PERSON_ROWS and is_address(str(row[PERSON_ROWS[table]]), address):
                continue
            clean = {k: scrub(v, address) for k, v in row.items()}
            if (
                table == "interactions"
                and any(is_address(b, address) for b in row["buyers"])
                and not clean["buyers"]
            ):
                continue  # they were the only buyer: the interaction was theirs alone
            rewrites.setdefault(table, []).append(clean)
    # The clean rows go in first (same keys and versions, so they win under FINAL) and have other
    # row hashes, so the deletes below remove only the old rows: input rows are never missing,
    # even if forget stops half way.
    sink = Sink(client)
    origin = f"forget:{hash_of(address)}:{int(clock.now() * 1e9)}"
    sink.write_now(rewrites, origin + ":inputs")
    touched = []
    for table in TABLE_KEYS:
        columns = columns_of(client, table)
        conditions = []
        if hashes := sorted({h for h, _ in found[table]}):
            conditions.append(f"{row_hash(columns)} IN ({', '.join(map(str, hashes))})")
        if table not in INPUT_TABLES and table != "rejected_events" and accounts:
            conditions.append(f"account_id IN ({', '.join(quote(a) for a in accounts)})")
        if not conditions:
            continue
        touched.append(table)
        before = count(client, table)
        client.command(
            f"ALTER TABLE {DATABASE}.{table} DELETE WHERE {' OR '.join(conditions)}",
            settings={"mutations_sync": 2},
        )
        rewritten = len(rewrites.get(table, []))
        # Stored versions gone, less the rows that live on rewritten.
        if removed := before - count(client, table) - rewritten:
            report.deleted[table] = removed
            if table in INPUT_TABLES or table == "rejected_events":
                note_forgotten(settings.written_dir, {table: removed})
        if rewritten:
            report.rewritten[table] = rewritten
        if table in SUMMARIES and accounts:  # every score row of these accounts went above
            delete_accounts(client, SUMMARIES[table], accounts)
            touched.extend(SUMMARIES[table])
    kept = {(r["account_id"], r["interaction_id"]) for r in rewrites.get("interactions", [])}
    if gone := sorted({(r["account_id"], r["interaction_id"]) for _, r in found["interactions"]} - kept):
        resync_by_time(client, gone)
        touched.append("interactions_by_time")
    profile = load_profile(settings.scoring_profile)
    states = rescore(client, accounts, settings.allowed_lateness_s, profile, sink, origin, report, clock)
    local = settings.warehouse_url.startswith("chdb://")
    report.purged = purge(client, touched + list(report.score_rows), local)
    return report, {account: states.get(account) for account in accounts}


def rescore_late(
    accounts: list[str], settings: Settings, client: Client, clock: Clock
) -> dict[str, dict[str, Any] | None]:
    """Accounts that received records older than what they had settled (a mailbox folder
    ingested after a later one): delete their score rows and rescore them from every input row
    the warehouse holds, in event-time order, so they score as if the records had come in order.
    CRM records are rebuilt from their latest rows (as ``forget`` does), so an opportunity's
    earlier stages are not seen again. Returns the new states."""
    accounts = sorted(set(accounts))
    listed = ", ".join(quote(a) for a in accounts)
    delete_accounts(
        client, [*SCORE_TABLES, *(s for t in SCORE_TABLES for s in SUMMARIES.get(t, ()))], accounts
    )
    report = ForgetReport("")
    origin = f"rescore:{hashlib.blake2b(listed.encode(), digest_size=8).hexdigest()}:{int(clock.now() * 1e9)}"
    profile = load_profile(settings.scoring_profile)
    states = rescore(
        client, accounts, settings.allowed_lateness_s, profile, Sink(client), origin, report, clock, False
    )
    return {account: states.get(account) for account in accounts}


def resync_by_time(client: Client, keys: list[tuple[str, str]]) -> None:
    """Interactions deleted outright (their only buyer was forgotten): their rows in the
    time-sorted copy go too, and what interactions still holds of them (an older version
    without the person) is copied again, so the copy keeps what interactions FINAL keeps."""
    listed = "[" + ", ".join(f"({quote(a)}, {quote(i)})" for a, i in keys) + "]"
    client.command(
        f"ALTER TABLE {DATABASE}.interactions_by_time DELETE WHERE (account_id, interaction_id) IN {listed}",
        settings={"mutations_sync": 2},
    )
    client.command(
        f"INSERT INTO {DATABASE}.interactions_by_time "
        "SELECT occurred_at, interaction_id, account_id, channel, automated, version, 0 "
        f"FROM {DATABASE}.interactions FINAL WHERE (account_id, interaction_id) IN {listed}"
    )


def delete_accounts(client: Client, tables: Iterable[str], accounts: list[str]) -> None:
    """Delete every row of ``accounts`` from ``tables`` (score tables and their summaries)."""
    listed = ", ".join(quote(a) for a in accounts)
    for table in tables:
        client.command(
            f"ALTER TABLE {DATABASE}.{table} DELETE WHERE account_id IN ({listed})",
            settings={"mutations_sync": 2},
        )


def hash_of(address: str) -> str:
    """A short stand-in for the address in deduplication tokens and record ids (kept on disk)."""
    return hashlib.blake2b(address.encode(), digest_size=8).hexdigest()


def purge(client: Client, tables: Iterable[str], local: bool) -> dict[str, int]:
    """Leave no old copy on disk: merge each table into its final parts, then remove the parts
    the merges and deletes left behind (outdated, still holding deleted rows) and the finished
    mutation files.

    ClickHouse removes outdated parts only after ``old_parts_lifetime`` (480 s), and chDB not
    even then (measured: 6 outdated parts still there after 40 s with the lifetime set to 0). On
    chDB the table is detached, the outdated parts and ``mutation_*.txt`` are removed from its
    folder, and it is attached again (0.05 s). A ClickHouse server keeps removing them itself
    after ``old_parts_lifetime``; the report says how many were outdated at the end.
    """
    removed = {"outdated_parts": 0, "mutation_files": 0}
    for table in dict.fromkeys(tables):
        client.command(f"OPTIMIZE TABLE {DATABASE}.{table} FINAL")
        paths: list[str] = client.query(
            "SELECT data_paths FROM system.tables WHERE database = %(db)s AND name = %(table)s",
            parameters={"db": DATABASE, "table": table},
        ).result_rows[0][0]
        active = {
            name
            for (name,) in client.query(
                "SELECT name FROM system.parts WHERE database = %(db)s AND table = %(table)s AND active",
                parameters={"db": DATABASE, "table": table},
            ).result_rows
        }
        if not local:
            outdated = client.query(
                "SELECT count() FROM system.parts WHERE database = %(db)s AND table = %(table)s "
                "AND NOT active",
                parameters={"db": DATABASE, "table": table},
            ).result_rows[0][0]
            removed["outdated_parts"] += int(outdated)
            continue
        client.command(f"DETACH TABLE {DATABASE}.{table}")
        try:
            for folder in (Path(path) for path in paths):
                for entry in folder.iterdir() if folder.is_dir() else ():
                    if entry.is_dir() and entry.name not in active and entry.name != "detached":
                        shutil.rmtree(entry)
                        removed["outdated_parts"] += 1
                    elif entry.name.startswith("mutation_") and entry.name.endswith(".txt"):
                        entry.unlink()
                        removed["mutation_files"] += 1
        finally:
            client.command(f"ATTACH TABLE {DATABASE}.{table}")
    return {k: v for k, v in removed.items() if v}


def count(client: Client, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {DATABASE}.{table}").result_rows[0][0])


def refuse_while_running(settings: Settings) -> None:
    if pid := running_worker(settings):
        raise ForgetError(
            f"a worker (pid {pid}) is running on {settings.home}; stop `rapport up` first, "
            "then run forget, then start it again"
        )


def request_forget(email: str, settings: Settings, clock: Clock | None = None) -> str:
    """Ask the running workers to forget ``email``: a ``forget/1`` record on every
    ``interactions`` partition, applied by the ``score`` agent in stream order (events before
    it are forgotten, mail arriving after it is new data). Returns the normalised address."""
    from datetime import UTC, datetime

    from kafka import KafkaProducer

    from streams.config import TOPIC_INTERACTIONS

    address = checked_address(email)
    now = (clock or SystemClock()).now()
    at = format_time(datetime.fromtimestamp(now, UTC))
    record = make(
        "forget/1",
        f"forget:{hash_of(address)}:{int(now * 1e9)}",
        "rapport",
        at,
        {
            "address": address,
            "requested_at": now,
        },
    )
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for partition in range(settings.partitions):
            producer.send(TOPIC_INTERACTIONS, value=record.to_bytes(), partition=partition)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return address


def running_worker(settings: Settings) -> int | None:
    """The pid of a live worker on this home, else ``None``."""
    status = read_status(settings.status_file) or {}
    pid = status.get("pid")
    if (settings.state_dir / "worker-running").exists() and isinstance(pid, int) and alive(pid):
        return pid
    return None


class ScoresOnly:
    """A row sink that writes only score tables (the input rows are there already) and, with
    ``listings``, the provisional ``accounts`` rows the scorer writes when a domain account
    becomes a relationship (a late record can make it one)."""

    def __init__(self, sink: Sink, listings: bool = False) -> None:
        self.sink = sink
        self.listings = listings
        self.written = WriteStats(rows={})

    async def write(self, rows: Rows, origin: str) -> WriteStats:
        kept = {t: r for t, r in rows.items() if t not in INPUT_TABLES}
        if self.listings and (listed := [r for r in rows.get("accounts", []) if r.get("provisional")]):
            kept["accounts"] = listed
        self.written = await self.sink.write(kept, origin)
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
    settle_all: bool = True,
) -> dict[str, dict[str, Any]]:
    """Recompute the score tables of ``accounts`` from their remaining input rows. ``settle_all``:
    the end settles and closes as a replay's end does; else the states stop where their own
    records leave them, and stream time goes on closing their days (late records)."""
    if not accounts:
        return {}
    records = sorted(input_envelopes(client, accounts), key=lambda r: (r[1].occurred_at, r[1].event_id))
    # late records can make a domain account a relationship: its listing is written too
    store, scores = DictStore(), ScoresOnly(sink, listings=not settle_all)
    ports = Ports(store, scores, NoPublisher(), clock)
    # One step from an empty store; windows close as the live idle timer and replay close them:
    # on the clock.
    step = Step(records, eof=settle_all, origin=origin + ":scores")
    # Late records: each account alone on its partition, so its days close on its own records
    # only, never beyond what the live partition's clock closed (later ticks close the rest).
    alone = {a: i for i, a in enumerate(accounts)}
    scoring = Scoring(ports.store, lateness_s, profile, (lambda _a: 0) if settle_all else alone.__getitem__)
    asyncio.run(run([step], scoring, ports))
    report.score_rows = scores.written.rows
    report.rescored = accounts
    return dict(store)


def rows_of(client: Client, table: str, accounts: Iterable[str]) -> list[dict[str, Any]]:
    listed = ", ".join(quote(a) for a in accounts)
    result = client.query(f"SELECT * FROM {DATABASE}.{table} FINAL WHERE account_id IN ({listed})")
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def input_envelopes(client: Client, accounts: list[str]) -> list[tuple[str, Envelope]]:
    """The accounts' remaining interactions and CRM rows, as the envelopes the scorer takes
    (each record rebuilt from its row by its own shape: :mod:`streams.records`)."""
    records: list[tuple[str, Envelope]] = []
    for row in rows_of(client, "interactions", accounts):
        interaction = Interaction.from_row(row)
        payload = payload_of(interaction)
        envelope = Envelope(
            "interaction/1", row["source_event_id"], "warehouse", interaction.occurred_at, payload
        )
        records.append((row["account_id"], envelope))
    for row in rows_of(client, "accounts", accounts):
        if not row["provisional"]:  # a provisional row is written by the scorer itself, not an input
            account = CrmAccount.from_row(row)
            records.append(
                (row["account_id"], crm("crm_account/1", f"account:{account.account_id}", row, account))
            )
    for row in rows_of(client, "contacts", accounts):
        contact = CrmContact.from_row(row)
        records.append(
            (row["account_id"], crm("crm_contact/1", f"contact:{contact.contact_id}", row, contact))
        )
    for row in rows_of(client, "opportunities", accounts):
        opportunity = CrmOpportunity.from_row(row)
        event_id = f"opportunity:{opportunity.opportunity_id}"
        records.append((row["account_id"], crm("crm_opportunity/1", event_id, row, opportunity)))
    return records


def crm(schema: str, event_id: str, row: dict[str, Any], record: msgspec.Struct) -> Envelope:
    updated_at = format_time(row["updated_at"])
    source = row.get("source") or "warehouse"
    try:
        return make(schema, f"{event_id}:{updated_at}", source, updated_at, payload_of(record))
    except ContractError as exc:
        raise ForgetError(f"cannot rebuild a {schema} record from the warehouse: {exc}") from exc


def replace_state(settings: Settings, states: dict[str, dict[str, Any] | None], report: ForgetReport) -> str:
    """Put the recomputed states where the next worker reads them; says what it did.

    The local RocksDB cache (which holds the old states, in live files and in files compaction
    has not reached yet) is removed whole: a worker rebuilds it from the changelog. With an
    external Kafka each rescored account's new state, or a tombstone when nothing of it is
    left, is appended to the changelog; compaction then drops the superseded records.
    """
    removed = settings.state_dir.exists()
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    cache = "local state cache removed" if removed else "no local state cache"
    if not settings.kafka_bootstrap:
        return f"{cache}; the embedded broker keeps no state between runs"
    store = ChangelogStore(settings.kafka_bootstrap, settings.app_id, settings.partitions)
    store.put(states)
    report.states = {
        "written": sum(1 for s in states.values() if s is not None),
        "removed": sum(1 for s in states.values() if s is None),
    }
    return f"{cache}; recomputed account states written to {store.topic}"
