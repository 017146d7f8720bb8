"""The faust application: two hops, ``resolve`` then ``score``, as in DESIGN.md.

The agents are adapters over the shared core; scoring, dead letters and the write order live in
:mod:`streams.runtime.loop` and :mod:`streams.scoring.engine`.

* ``resolve`` reads ``raw`` (email, meeting and CRM envelopes) in batches, validates each
  message, places it on an account (:mod:`streams.identity.resolver`) and sends each account's
  canonical records of the batch to ``interactions`` as one ``interaction_batch/1`` message keyed
  by ``account_id`` (a message per event would cost the score agent a faust consume per event,
  its dearest part). Bad input goes to ``deadletter`` with the reason.
  The CRM contacts and account domains it sees feed the ``contact-directory`` global table,
  which every worker reads.
* ``score`` reads ``interactions`` in batches (size and time bounded) and hands each batch as a
  :class:`streams.runtime.loop.Step` to :func:`streams.runtime.loop.run`, over ports: the
  RocksDB state table (:class:`TableStore`), the warehouse sink (retrying inside the step until
  the rows land, because ``take_events`` acks the batch when the next one is asked for), and
  the ``scores``, ``alerts`` and ``deadletter`` topics. Offsets are committed only for
  committed steps.
* ``deadletters`` writes ``deadletter`` records to ``rejected_events``.
* A timer sends a ``tick`` to every ``interactions`` partition; a partition idle for
  ``idle_flush_s`` settles its accounts' pending events (event-time windows close on the
  watermark while traffic flows, and on this timer when it stops): ``Scoring.on_notify``.

Every agent runs with ``concurrency=1`` (faust issue #606 loses messages above 1).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import faust

from streams.config import (
    TOPIC_ALERTS,
    TOPIC_DEADLETTER,
    TOPIC_INTERACTIONS,
    TOPIC_RAW,
    TOPIC_SCORES,
    Settings,
)
from streams.contracts import ContractError, Envelope, batches, decode, format_time, make, parse_time, unbatch
from streams.deadletters import dead_letter, rejected_row
from streams.identity.directory import CrmDirectory
from streams.identity.fingerprint import Copies
from streams.identity.resolver import Resolver
from streams.runtime.broker_data import END_REFRESH_KEY
from streams.runtime.changelog import partition_of
from streams.runtime.forget import forget_in_broker, forget_in_warehouse, rescore_late
from streams.runtime.loop import Outcome, Ports, Step, run
from streams.runtime.outbound import alert_envelope, health_envelope
from streams.runtime.ports import Clock, Rows, RowSink, SystemClock
from streams.runtime.status import WorkerStatus
from streams.runtime.stored_state import pack, unpack
from streams.runtime.transport import App, UnreadFetches, consumer_positions, refetch
from streams.scoring.engine import Scoring, closed_through, flushable
from streams.scoring.profile import Profile, load_profile
from streams.sinks.warehouse import TABLE_KEYS, Client, Sink, WriteStats
from streams.sinks.written import SAVE_EVERY_S, WrittenKeys

log = logging.getLogger(__name__)
T = TypeVar("T")

# The agents' producer batch per partition (faust's default: 16 KB). aiokafka keeps one produce
# request in flight per broker and puts at most one batch per partition in it; a full batch makes
# the next send wait until it is taken. So with 16 KB an agent sending an interaction batch of
# 1,000 events waited for several durable round trips in a row: at 600 events/s (half the live
# rate) resolve sat 1.4-2.9 s per batch with the worker's main thread 45 % idle, its queue grew
# to 3,300 events, and p95 latency was 5.0-9.3 s (8 runs, 2026-12-03). With 256 KB (the ingest
# producer's batch size): p95 2.4-2.8 s, and no queue (the last fifth's median under the first's).
PRODUCER_BATCH_BYTES = 256 * 1024

# Every send goes out at once (``stream_publish_on_commit`` off, faust's default, set below) and
# each commit first flushes the producer, so a kill after a commit loses nothing sent before it.
# Keep the interval well under the idle flush (5 s). Measured (mechanism not isolated): at 600
# events/s with the batch above, p95 latency 2.26-2.80 s with 0.5 s and 1.83-1.84 s with 0.25 s
# (two runs each, 2026-12-03); a shorter score window (0.25 s instead of 0.5 s) made it worse
# (2.48-3.74 s): each scoring step has fixed costs (warehouse inserts, state writes).
COMMIT_INTERVAL_S = 0.25


def batch_origin(events: Iterable[faust.EventT]) -> str:
    """topic/partition/offset ranges of a batch plus a digest of its bytes.

    The insert deduplication token's source: a redelivered batch gives the same token, while
    the same offsets on a new broker (the embedded one starts empty each run) with other
    content do not.
    """
    spans: dict[tuple[str, int], list[int]] = {}
    digest = hashlib.blake2b(digest_size=16)
    for event in events:
        digest.update(event.value or b"")
        message = event.message
        span = spans.setdefault((message.topic, message.partition), [message.offset, message.offset])
        span[0] = min(span[0], message.offset)
        span[1] = max(span[1], message.offset)
    ranges = ";".join(f"{t}/{p}/{lo}-{hi}" for (t, p), (lo, hi) in sorted(spans.items()))
    return f"{ranges};{digest.hexdigest()}"


def sort_out(
    events: Iterable[faust.EventT],
    stage: str,
    use: Callable[[faust.EventT], T],
    expected: tuple[type[Exception], ...] = (ContractError,),
) -> tuple[list[tuple[faust.EventT, T]], list[Envelope]]:
    """``use`` on every event: what it gave, and a dead letter with the reason for each event it
    raised on (an ``expected`` error names the bad input; anything else is a bug, named so).
    End-offset refresh tombstones are passed over: they are not input."""
    good: list[tuple[faust.EventT, T]] = []
    letters: list[Envelope] = []
    for event in events:
        if event.value is None and event.key == END_REFRESH_KEY:
            continue  # written by a starting worker (streams.runtime.worker), carries nothing
        try:
            good.append((event, use(event)))
        except Exception as exc:
            bug = f"{stage} failed: {type(exc).__name__}: {exc}"
            letters.append(letter_for(event, stage, str(exc) if isinstance(exc, expected) else bug))
    return good, letters


def letter_for(event: faust.EventT, stage: str, reason: str, data: bytes | None = None) -> Envelope:
    message = event.message
    raw = event.value if data is None else data
    return dead_letter(message.topic, stage, reason, raw, message.partition, message.offset)


class TableStore:
    """The account states' RocksDB table as a state store port, each key on its partition.

    faust picks the RocksDB partition of a get or set from the stream's current event. Inside a
    batch that event belongs to whichever partition came last, so a read for another partition's
    key finds nothing and a write lands in the wrong place. Each access first points the current
    event at an event of the key's partition (its anchor, set per step) and then puts the
    stream's own event back, because ``take_events`` pairs buffered values with it.
    """

    def __init__(self, table: Any, partitions: int = 1) -> None:
        self.table = table
        self.partitions = partitions
        self.lateness_s = 0.0
        self.stream: faust.Stream | None = None
        self.anchors: dict[str, faust.EventT] = {}
        # an event of each partition in the step: silent accounts closed by its watermark
        self.partition_anchors: dict[int, faust.EventT] = {}

    def _at(self, key: str) -> faust.EventT | None:
        assert self.stream is not None, "TableStore used outside the score agent"
        previous = self.stream.current_event
        anchor = self.anchors.get(key) or self.partition_anchors[partition_of(key, self.partitions)]
        self.stream._set_current_event(anchor)
        return previous

    def get(self, key: str) -> dict[str, Any] | None:
        previous = self._at(key)
        try:
            data = self.table.get(key)
        finally:
            cast(faust.Stream, self.stream)._set_current_event(previous)
        return None if data is None else unpack(data)

    def put(self, states: Mapping[str, dict[str, Any]]) -> None:
        for key, state in states.items():
            previous = self._at(key)
            try:
                self.table[key] = pack(state)
            finally:
                cast(faust.Stream, self.stream)._set_current_event(previous)

    def drop(self, keys: Iterable[str]) -> None:
        """Delete states (a forget left nothing of the account): tombstones in the changelog."""
        for key in keys:
            previous = self._at(key)
            try:
                self.table.pop(key, None)
            finally:
                cast(faust.Stream, self.stream)._set_current_event(previous)

    def keys(self) -> Iterable[str]:
        return list(self.table.keys())

    def compact(self) -> int:
        """Flush and compact the local RocksDB files, so values a new one superseded (a forgotten
        person's old states) are dropped rather than left in older files. Returns the
        partitions compacted (none for faust's memory store)."""
        dbs = getattr(self.table.data, "_dbs", {})
        for db in list(dbs.values()):
            db.flush(True)
            db.compact_range(None, None)
        return len(dbs)

    def pending(
        self, now: Callable[[str, Mapping[str, Any]], float], profile: Profile
    ) -> tuple[dict[str, int], set[str]]:
        """Accounts (of this worker's partitions) with something to settle at their idle clock,
        and those whose state asks to be rescored (late records), in one pass over the table."""
        pending, flagged = {}, set()
        for key, value in self.table.items():
            state = unpack(value)
            if state.get("rescore"):
                flagged.add(key)
            if count := flushable(state, now(key, state), profile, self.lateness_s):
                pending[key] = count
        return pending, flagged


@dataclass
class TopicPublisher:
    """The ``scores``, ``alerts`` and ``deadletter`` topics as a publisher port."""

    scores: faust.TopicT
    alerts: faust.TopicT
    deadletter: faust.TopicT

    async def publish(
        self,
        health: list[dict[str, Any]],
        alerts: list[tuple[dict[str, Any], str | None]],
        letters: list[Envelope],
    ) -> None:
        for letter in letters:
            await self.deadletter.send(key=letter.event_id.encode(), value=letter.to_bytes())
        for row in health:
            await self.scores.send(key=row["account_id"].encode(), value=health_envelope(row).to_bytes())
        for row, owner in alerts:
            event = alert_envelope(row, owner)
            await self.alerts.send(key=row["account_id"].encode(), value=event.to_bytes())


class LazySink:
    """The warehouse sink, opened (and migrated) on first use or by the start-up task."""

    def __init__(self, open_client: Callable[[], Client], written: WrittenKeys | None = None) -> None:
        self.open_client = open_client
        self.written = written
        self.sink: Sink | None = None

    def opened(self) -> Sink:
        if self.sink is None:
            from streams.sinks.warehouse import migrate

            client = self.open_client()
            migrate(client)
            self.sink = Sink(client, written=self.written)
        return self.sink

    async def write(self, rows: Rows, origin: str) -> WriteStats:
        return await self.opened().write(rows, origin)


@dataclass
class ScoreIntake:
    """The score agent's per-worker memory and its batch → step cutting: idle partitions and
    accounts with pending events; ticks; dead letters for undecodable or unkeyed messages."""

    idle_flush_s: float
    partitions: int
    profile: Profile
    store: TableStore
    status: WorkerStatus
    clock: Clock = field(default_factory=SystemClock)
    started: float = 0.0  # wall time of this worker's first batch (0 until then)
    last_event: dict[int, float] = field(default_factory=dict)  # partition -> wall time
    pending: dict[str, int] | None = None  # account -> what a settle would do; None until first scan
    scoring: Scoring | None = None  # its idle clock (Scoring.idle_now) judges what is pending
    # forget/1 control records: the warehouse part (returns the rescored states), the requests
    # done, and rescored states waiting for their partition's record (the store needs an anchor)
    forget: Callable[[str], Awaitable[dict[str, dict[str, Any] | None]]] | None = None
    forgotten: set[str] = field(default_factory=set)
    # Accounts that got late records are rescored from the warehouse (forget.rescore_late);
    # the states carry the need (``rescore``), so a restart finds what a crash left undone.
    rescore: Callable[[list[str]], Awaitable[dict[str, dict[str, Any] | None]]] | None = None
    to_rescore: set[str] = field(default_factory=set)
    scanned: dict[int, int] = field(default_factory=dict)  # partition -> day closed at its last scan
    rescored: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    # Once the rescored states of this worker's partitions are stored, ``purge`` removes the
    # person from the directory and from the embedded broker's stored topics (broker_data).
    purge: Callable[[str], Awaitable[int]] | None = None  # -> records made tombstones
    to_purge: set[str] = field(default_factory=set)
    assigned: Callable[[], set[int]] | None = None  # this worker's partitions (None: all)

    async def steps(self, batches: AsyncIterator[Sequence[faust.EventT]]) -> AsyncIterator[Step]:
        async for events in batches:
            yield self.step(events)

    def step(self, events: Sequence[faust.EventT]) -> Step:
        now = self.clock.now()
        self.started = self.started or now
        decoded, letters = sort_out(events, "score", lambda e: decode(e.value))
        records: list[tuple[str, Envelope]] = []
        marks: list[tuple[str, float]] = []
        ticks: dict[int, faust.EventT] = {}
        forgets: list[tuple[Envelope, faust.EventT]] = []
        anchors: dict[str, faust.EventT] = {}  # account -> an event on its partition
        for event, envelope in decoded:
            partition = event.message.partition
            if envelope.schema == "tick/1":
                if self.fresh(envelope.payload["wall_time"], now):
                    ticks[partition] = event
                continue
            if envelope.schema == "forget/1":  # applied once this batch's step is committed
                forgets.append((envelope, event))
                continue
            account_id = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else ""
            if not account_id:
                letters.append(letter_for(event, "score", "record without an account key"))
                continue
            self.last_event[partition] = now
            anchors[account_id] = event
            members, broken = unbatch(envelope)
            records.extend((account_id, member) for member in members)
            # a batch's time is its resolve batch's floor (streams.contracts.batches)
            marks.append((account_id, parse_time(envelope.occurred_at).timestamp()))
            letters.extend(letter_for(event, "score", reason, data) for data, reason in broken)
        due = self.due(ticks, now)
        anchors.update({a: ticks[partition_of(a, self.partitions)] for a in due})
        self.store.anchors = anchors
        self.store.partition_anchors = {e.message.partition: e for e in events}
        done = lambda outcome: self.done(outcome, events, forgets)  # noqa: E731
        return Step(records, letters, marks, notify=due, now=now, origin=batch_origin(events), done=done)

    def due(self, ticks: dict[int, faust.EventT], now: float) -> list[str]:
        idle = {p for p in ticks if self.idle(p, now)}
        if not idle:
            return []
        # Scan for pending accounts at the first tick since start, and again when an idle
        # partition's clock closes a new day: accounts stored earlier may be due now (their
        # partition's later records moved its clock, not theirs: presto-k's whole ingest left 11
        # of ubspw.com's value windows open).
        days = {p: self.closed_day(p, now) for p in idle}
        if self.pending is None or any(d > self.scanned.get(p, -(10**9)) for p, d in days.items()):
            self.pending, flagged = self.store.pending(
                lambda a, state: self.idle_now(a, state, now), self.profile
            )
            self.scanned.update(days)
            self.to_rescore.update(flagged)  # late records a crash left unrescored
        return [a for a in self.pending if partition_of(a, self.partitions) in idle]

    def done(
        self,
        outcome: Outcome,
        events: Sequence[faust.EventT],
        forgets: Sequence[tuple[Envelope, faust.EventT]] = (),
    ) -> Awaitable[None] | None:
        """After the commit: remember what is pending, report status, and mark the partitions
        busy until now (idle means no batch *finished* lately: a slow write is not silence)."""
        snapshot, status = outcome.snapshot, self.status
        if outcome.written is not None:
            status.add_rows(outcome.written.rows, outcome.written.retries)
        self.remember_pending(outcome.stored)
        self.to_rescore.update(a for a, state in outcome.stored.items() if state.get("rescore"))
        status.count("idle_flushes", snapshot.settled)
        status.count("events", len(outcome.step.records))
        status.count("duplicates", snapshot.duplicates)
        status.count("late", snapshot.late)
        status.set("pending_events", sum(self.pending.values()) if self.pending is not None else -1)
        status.write()
        finished = self.clock.now()
        for partition in self.last_event.keys() & {e.message.partition for e in events}:
            self.last_event[partition] = finished
        if forgets or (self.to_rescore and self.rescore is not None):
            return self.apply_controls(forgets)
        return None

    def remember_pending(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        if self.pending is not None:
            now = self.clock.now()
            for account_id, state in states.items():
                at = self.idle_now(account_id, state, now)
                if count := flushable(state, at, self.profile, self.store.lateness_s):
                    self.pending[account_id] = count
                else:
                    self.pending.pop(account_id, None)

    async def apply_controls(self, forgets: Sequence[tuple[Envelope, faust.EventT]]) -> None:
        """Rescore the accounts with late records of this batch (their records anchor the new
        states), then apply the forget requests."""
        here = sorted(a for a in self.to_rescore if a in self.store.anchors)
        if here and self.rescore is not None:
            states = await self.rescore(here)
            self.store.put({a: state for a, state in states.items() if state is not None})
            if self.scoring is not None:
                self.scoring.replaced(states)
            self.remember_pending({a: s for a, s in states.items() if s is not None})
            self.to_rescore.difference_update(here)
            self.status.count("rescored", len(here))
            self.status.write()
        if forgets:
            await self.apply_forgets(forgets)

    async def apply_forgets(self, forgets: Sequence[tuple[Envelope, faust.EventT]]) -> None:
        """Forget each requested person in the warehouse once (``forget`` rescored their accounts),
        then store each rescored state when its partition's forget record comes by."""
        for envelope, event in forgets:
            if envelope.event_id not in self.forgotten and self.forget is not None:
                self.forgotten.add(envelope.event_id)
                self.rescored.update(await self.forget(envelope.payload["address"]))
                self.to_purge.add(envelope.payload["address"])
                self.status.count("forgets", 1)
            here = [a for a in self.rescored if partition_of(a, self.partitions) == event.message.partition]
            self.store.anchors.update(dict.fromkeys(here, event))
            states = {a: self.rescored.pop(a) for a in here}
            self.store.put({a: state for a, state in states.items() if state is not None})
            self.store.drop(a for a, state in states.items() if state is None)
        mine = self.assigned() if self.assigned is not None else set(range(self.partitions))
        waiting = any(partition_of(a, self.partitions) in mine for a in self.rescored)
        if self.to_purge and self.purge is not None and not waiting:
            for address in sorted(self.to_purge):
                self.status.count("forget_tombstones", await self.purge(address))
                self.status.count("forget_purges", 1)
            self.to_purge.clear()
        self.status.write()

    def closed_day(self, partition: int, wall: float) -> int:
        """The last day an idle tick at ``wall`` closes on ``partition`` (very small: unknown)."""
        at = self.scoring.partition_clock(partition, wall) if self.scoring else wall
        return -(10**9) if at is None else closed_through(at, self.store.lateness_s)

    def idle_now(self, account_id: str, state: Mapping[str, Any], wall: float) -> float:
        """The time an idle tick at ``wall`` settles ``account_id`` at: the same idle clock as
        :meth:`Scoring.on_notify`'s, so what is counted pending is what a tick settles."""
        watermark = float(state.get("watermark", 0.0))
        return self.scoring.idle_now(account_id, watermark, wall) if self.scoring else wall

    def fresh(self, tick_sent: float, now: float) -> bool:
        """A tick redelivered after a crash or a rebalance is stale: the worker that sent it
        judged idleness by its own clock, and acting on it now would settle events early."""
        return tick_sent >= self.started and now - tick_sent <= 2 * self.idle_flush_s

    def idle(self, partition: int, now: float) -> bool:
        # A partition this worker has not heard from yet (just started, or just assigned) is not
        # idle until it has been quiet for idle_flush_s: its backlog may still be on the way.
        return now - self.last_event.get(partition, self.started) >= self.idle_flush_s


def create_app(
    settings: Settings,
    store: str = "rocksdb://",
    idle_flush_s: float = 5.0,
    clock: Clock | None = None,
    warehouse_client: Callable[[], Client] | None = None,
    sink: RowSink | None = None,
) -> App:
    """The faust app with its agents, configured from ``settings``.

    ``warehouse_client`` opens the warehouse (default: :func:`open_warehouse_client` on
    ``settings.warehouse_url``); ``sink`` replaces the warehouse altogether (agent tests pass
    :class:`streams.testing.ListSink`).
    """
    if not settings.kafka_bootstrap:
        raise ValueError("create_app needs settings.kafka_bootstrap (start the broker first)")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    app = App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store=store,
        datadir=str(settings.state_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 3),
        processing_guarantee="at_least_once",
        broker_commit_interval=COMMIT_INTERVAL_S,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        value_serializer="raw",
        key_serializer="raw",
        table_standby_replicas=0,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        stream_publish_on_commit=False,
    )
    app.fetch_wait_ms = settings.fetch_wait_ms
    raw_topic = app.topic(TOPIC_RAW, value_serializer="raw", key_serializer="raw")
    interactions = app.topic(
        TOPIC_INTERACTIONS, value_serializer="raw", key_serializer="raw", partitions=settings.partitions
    )
    deadletter = app.topic(TOPIC_DEADLETTER, value_serializer="raw", key_serializer="raw")
    scores = app.topic(TOPIC_SCORES, value_serializer="raw", key_serializer="raw")
    alerts = app.topic(TOPIC_ALERTS, value_serializer="raw", key_serializer="raw")
    # json keys; values are compressed JSON (streams.runtime.stored_state), read through TableStore
    states = app.Table("account-state", partitions=settings.partitions, value_type=bytes)
    # Every worker resolves with every CRM contact and account domain: a global table fed by the
    # crm_contact and crm_account records resolve sees. One changelog partition and a recovery
    # buffer of 1, as faust's GlobalTable docs advise for several workers; use_partitioner
    # because raw has other partition counts.
    # In memory (rebuilt from its changelog at start): workers share one state folder, and each
    # would lock the same RocksDB files of a global table. ("memory://" alone is an empty URL to
    # faust, which then falls back to the app's RocksDB store.)
    contacts = app.GlobalTable(
        "contact-directory",
        store="memory://directory",
        partitions=1,
        recovery_buffer_size=1,
        use_partitioner=True,
        synchronize_all_active_partitions=True,
    )
    directory = CrmDirectory(contacts)
    resolver = Resolver(settings.seller_domains, directory)
    profile = load_profile(settings.scoring_profile)
    status = WorkerStatus(settings.status_file)
    clock = clock or SystemClock()
    table = TableStore(states, settings.partitions)
    table.lateness_s = settings.allowed_lateness_s
    publisher = TopicPublisher(scores, alerts, deadletter)
    keys_written = WrittenKeys(settings.written_dir, f"worker-{os.getpid()}", TABLE_KEYS)
    warehouse = LazySink(
        warehouse_client or (lambda: open_warehouse_client(settings.warehouse_url)), keys_written
    )
    rows_to: RowSink = sink or warehouse
    ports = Ports(table, rows_to, publisher, clock)
    intake = ScoreIntake(idle_flush_s, settings.partitions, profile, table, status, clock)

    async def rescore_accounts(accounts: list[str]) -> dict[str, dict[str, Any] | None]:
        client = (await asyncio.to_thread(warehouse.opened)).client
        states = await asyncio.to_thread(rescore_late, accounts, settings, client, clock)
        log.info("late records: %d accounts rescored from the warehouse", len(accounts))
        return states

    async def forget_person(address: str) -> dict[str, dict[str, Any] | None]:
        client = (await asyncio.to_thread(warehouse.opened)).client
        report, states = await asyncio.to_thread(forget_in_warehouse, address, settings, client, clock)
        counts = {k: v for k, v in report.as_dict().items() if k not in ("email", "rescored")}
        log.info("forget applied: %d accounts rescored, %s", len(report.rescored), counts)
        return states

    async def purge_person(address: str) -> int:
        """After the rescored states: the directory entry (its tombstone goes to the changelog),
        the superseded values in the local RocksDB files, then, with everything flushed to the
        broker, its stored records (embedded broker only)."""
        directory.forget(address)
        await app.producer.flush()
        await asyncio.to_thread(table.compact)
        counts = await asyncio.to_thread(forget_in_broker, settings, address)
        log.info("forget: embedded broker records made tombstones: %s", counts.get("replaced", "none"))
        return sum(counts.get("replaced", {}).values())

    def assigned() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == TOPIC_INTERACTIONS}

    if sink is None:
        intake.forget = forget_person
        intake.purge = purge_person
        intake.assigned = assigned
        intake.rescore = rescore_accounts

    @app.task
    async def open_warehouse() -> None:
        """Open and migrate the warehouse at start, not inside the first batch."""
        if sink is None:
            await asyncio.to_thread(warehouse.opened)

    # Copies of one message (folder copies, re-exports under new Message-IDs) are dropped as
    # duplicates, as ingest and replay drop them. Raw is keyed by the routing account, so a copy
    # reaches the worker that saw its original; the memory is this process's (a restart forgets).
    copies = Copies()

    def resolve_unique(envelope: Envelope) -> list[Any]:
        # Resolved first: bad input is a dead letter with its reason, and only usable mail is
        # remembered (10,000 poison messages share a few fingerprints; 652 were taken for copies).
        resolved = resolver.resolve(envelope)
        if copies.original_of(envelope):
            # ``duplicates`` as in replay's summary (repeated ids and copies); ``copies`` are
            # those dropped here, which ``Stack.wait_drained`` counts as done beside ``events``
            status.count("copies", 1)
            status.count("duplicates", 1)
            return []
        return resolved

    @app.agent(raw_topic, concurrency=1)
    async def resolve(agent_stream: faust.StreamT) -> Any:
        stream = cast(faust.Stream, agent_stream)
        async for events in stream.take_events(
            settings.sink_batch_size, within=settings.resolve_batch_seconds
        ):
            resolved, letters = sort_out(events, "resolve", lambda e: resolve_unique(decode(e.value)))
            await publisher.publish([], [], letters)
            status.count("resolve_rejected", len(letters))
            by_account: dict[str, list[Envelope]] = {}  # in arrival order within each account
            for out in (out for _, outputs in resolved for out in outputs):
                by_account.setdefault(out.account_id, []).append(out.envelope)
            # the batch's earliest event time: the watermark its messages may advance to
            floor = min(
                (r for rs in by_account.values() for r in rs),
                key=lambda r: parse_time(r.occurred_at),
                default=None,
            )
            for account_id, records in by_account.items():
                for value in batches(account_id, records, floor.occurred_at if floor else None):
                    await interactions.send(key=account_id.encode(), value=value)
            # records sent on: beside the score agent's ``events``, a stalled drain's report
            # shows on which side of ``interactions`` a record went missing
            status.count("resolved", sum(map(len, by_account.values())))
            yield len(events)

    @app.agent(interactions, concurrency=1)
    async def score(agent_stream: faust.StreamT) -> None:
        stream = cast(faust.Stream, agent_stream)  # the concrete class: take_events, current event
        table.stream = stream
        batches_in = stream.take_events(settings.sink_batch_size, within=settings.sink_batch_seconds)
        scoring = Scoring(
            table, settings.allowed_lateness_s, profile, lambda a: partition_of(a, settings.partitions)
        )
        intake.scoring = scoring
        await run(intake.steps(batches_in), scoring, ports)

    @app.agent(deadletter, concurrency=1)
    async def deadletters(agent_stream: faust.StreamT) -> Any:
        stream = cast(faust.Stream, agent_stream)  # the concrete class: take_events, current event
        async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_batch_seconds):
            letters, broken = sort_out(
                events, "deadletter", lambda e: rejected_row(decode(e.value)), (ContractError, ValueError)
            )
            rows = [row for _, row in letters] + [rejected_row(letter) for letter in broken]
            written = await rows_to.write({"rejected_events": rows}, batch_origin(events))
            status.add_rows(written.rows, written.retries)
            status.write()
            yield len(rows)

    @app.timer(interval=SAVE_EVERY_S)
    async def save_keys_written() -> None:
        """Keys written in the last seconds, saved even when no write follows (a stop)."""
        await asyncio.to_thread(keys_written.flush)

    unread = UnreadFetches({TOPIC_RAW, TOPIC_INTERACTIONS, TOPIC_DEADLETTER})

    @app.timer(interval=max(0.5, idle_flush_s / 2))
    async def tick() -> None:
        """While traffic is idle and events are pending (or unknown yet), wake every partition;
        read again what faust dropped across a rebalance (:class:`UnreadFetches`)."""
        now = clock.now()
        if any(not intake.idle(p, now) for p in intake.last_event):
            return
        positions = consumer_positions(app)
        status.set("consumer", positions)
        due = unread.due(positions, now) if app.flow_control.is_active() else {}
        if due:
            await refetch(app, due)
            status.count("refetched", len(due))
            status.write()
        if intake.pending is not None and not intake.pending:
            status.write()
            return
        at = datetime.fromtimestamp(now, UTC)
        envelope = make("tick/1", f"tick:{int(now * 1e9)}", "rapport", format_time(at), {"wall_time": now})
        for partition in range(settings.partitions):
            await interactions.send(value=envelope.to_bytes(), partition=partition)

    # Handles for tests (faust test_context) and benchmarks.
    app.rapport_agents = {"resolve": resolve, "score": score, "deadletters": deadletters}
    app.rapport_topics = {
        "interactions": interactions,
        "deadletter": deadletter,
        "scores": scores,
        "alerts": alerts,
    }
    return app


def open_warehouse_client(url: str) -> Client:
    """The worker's warehouse client (a fault test starts its worker through ``tests/faults.py``,
    which replaces this function with one that wraps the client)."""
    from streams.sinks.warehouse import connect

    return connect(url)
