"""The faust application: two hops, ``resolve`` then ``score``, as in DESIGN.md.

* ``resolve`` reads ``raw`` (email, meeting and CRM envelopes) in batches, validates each
  message, places it on an account (:mod:`streams.identity.resolver`) and sends each account's
  canonical records of the batch to ``interactions`` as one ``interaction_batch/1`` message keyed
  by ``account_id`` (a message per event would cost the score agent a faust consume per event,
  its dearest part). Bad input goes to ``deadletter`` with the reason.
  The CRM contacts and account domains it sees feed the ``contact-directory`` global table,
  which every worker reads.
* ``score`` reads ``interactions`` in batches (size and time bounded), runs the pure core
  (:func:`streams.scoring.scorer.score_batch`) against per-account state in a RocksDB table,
  writes the rows to the warehouse (retrying inside the loop body until they land, because
  ``take_events`` acks the batch when the body finishes), then stores the new states and
  publishes health to ``scores``. Offsets are committed only for written batches.
* ``deadletters`` writes ``deadletter`` records to ``rejected_events``.
* A timer sends a ``tick`` to every ``interactions`` partition; a partition idle for
  ``idle_flush_s`` settles its accounts' pending events (event-time windows close on the
  watermark while traffic flows, and on this timer when it stops).

Every agent runs with ``concurrency=1`` (faust issue #606 loses messages above 1).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
import orjson
from aiokafka.partitioner import murmur2

from streams.config import (
    TOPIC_DEADLETTER,
    TOPIC_INTERACTIONS,
    TOPIC_RAW,
    TOPIC_SCORES,
    Settings,
)
from streams.contracts import ContractError, Envelope, batches, decode, format_time, make, unbatch
from streams.deadletters import dead_letter, rejected_row
from streams.identity.directory import CrmDirectory
from streams.identity.resolver import Resolver
from streams.runtime.status import WorkerStatus
from streams.runtime.stored_state import pack, unpack
from streams.runtime.transport import App
from streams.scoring.profile import Profile, load_profile
from streams.scoring.scorer import BatchResult, flush_accounts, flushable, score_batch
from streams.sinks.warehouse import Sink

log = logging.getLogger(__name__)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives a key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


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


def health_envelope(row: dict[str, Any]) -> Envelope:
    payload = {
        "account_id": row["account_id"],
        "as_of": row["as_of"].isoformat(),
        "score": row["score"],
        "tier": row["tier"],
        "depth": row["depth"],
        "explanation": orjson.loads(row["explanation"]),
        "model_version": row["model_version"],
        "version": row["version"],
    }
    at = datetime.combine(row["as_of"], datetime.min.time(), UTC)
    event_id = f"health:{row['account_id']}:{row['as_of']}:{row['version']}"
    return make("account_health/1", event_id, "rapport", format_time(at), payload)


class PartitionedTable:
    """Batch reads and writes of the account states' RocksDB table, each on its key's partition.

    faust picks the RocksDB partition of a get or set from the stream's current event. Inside a
    batch that event belongs to whichever partition came last, so a read for another partition's
    key finds nothing and a write lands in the wrong place. Each access first points the current
    event at an event of the key's partition (its anchor); on exit the stream's own event is put
    back, because ``take_events`` pairs buffered values with it.
    """

    def __init__(self, table: Any, stream: faust.Stream, anchors: dict[str, faust.EventT]) -> None:
        self.table, self.stream, self.anchors = table, stream, anchors
        self.previous: faust.EventT | None = None

    def get(self, key: str) -> dict[str, Any] | None:
        self.stream._set_current_event(self.anchors[key])
        data = self.table.get(key)
        return None if data is None else unpack(data)

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.stream._set_current_event(self.anchors[key])
        self.table[key] = pack(value)

    def __enter__(self) -> PartitionedTable:
        self.previous = self.stream.current_event
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream._set_current_event(self.previous)


@dataclass
class ScoreLoop:
    """The score agent's per-worker memory: idle partitions and accounts with pending events."""

    idle_flush_s: float
    started: float = 0.0  # wall time of this worker's first batch (0 until then)
    last_event: dict[int, float] = field(default_factory=dict)  # partition -> wall time
    pending: dict[str, int] | None = None  # account -> what a flush would settle; None until first scan

    def note(self, states: dict[str, dict[str, Any]], profile: Profile) -> None:
        """Remember what a flush would settle for these (stored) account states."""
        if self.pending is None:
            return
        now = time.time()
        for account_id, state in states.items():
            count = flushable(state, now, profile)
            if count:
                self.pending[account_id] = count
            else:
                self.pending.pop(account_id, None)

    def fresh(self, tick_sent: float, now: float) -> bool:
        """A tick redelivered after a crash or a rebalance is stale: the worker that sent it
        judged idleness by its own clock, and acting on it now would settle events early."""
        return tick_sent >= self.started and now - tick_sent <= 2 * self.idle_flush_s

    def idle(self, partition: int, now: float) -> bool:
        # A partition this worker has not heard from yet (just started, or just assigned) is not
        # idle until it has been quiet for idle_flush_s: its backlog may still be on the way.
        return now - self.last_event.get(partition, self.started) >= self.idle_flush_s


def create_app(settings: Settings, store: str = "rocksdb://", idle_flush_s: float = 5.0) -> faust.App:
    """The faust app with its agents, configured from ``settings``."""
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
        # Messages sent by an agent are published when their source offset commits, so the
        # commit interval paces the second hop; keep it well under the idle flush below.
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        value_serializer="raw",
        key_serializer="raw",
        table_standby_replicas=0,
    )
    app.fetch_wait_ms = settings.fetch_wait_ms
    raw_topic = app.topic(TOPIC_RAW, value_serializer="raw", key_serializer="raw")
    interactions = app.topic(
        TOPIC_INTERACTIONS, value_serializer="raw", key_serializer="raw", partitions=settings.partitions
    )
    deadletter = app.topic(TOPIC_DEADLETTER, value_serializer="raw", key_serializer="raw")
    scores = app.topic(TOPIC_SCORES, value_serializer="raw", key_serializer="raw")
    # json keys; values are compressed JSON (streams.runtime.stored_state), read through PartitionedTable
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
    resolver = Resolver(settings.seller_domains, CrmDirectory(contacts))
    profile = load_profile(settings.scoring_profile)
    status = WorkerStatus(settings.status_file)
    loop = ScoreLoop(idle_flush_s)
    sink: Sink | None = None

    def warehouse() -> Sink:
        nonlocal sink
        if sink is None:
            from streams.sinks.warehouse import connect, migrate, with_injected_faults

            client = with_injected_faults(connect(settings.warehouse_url))
            migrate(client)
            sink = Sink(client)
        return sink

    @app.task
    async def open_warehouse() -> None:
        """Open and migrate the warehouse at start, not inside the first batch."""
        await asyncio.to_thread(warehouse)

    @app.agent(raw_topic, concurrency=1)
    async def resolve(agent_stream: faust.StreamT) -> Any:
        stream = cast(faust.Stream, agent_stream)
        async for events in stream.take_events(
            settings.sink_batch_size, within=settings.resolve_batch_seconds
        ):
            by_account: dict[str, list[Envelope]] = {}  # in arrival order within each account
            for event in events:
                message = event.message
                try:
                    outputs = resolver.resolve(decode(event.value))
                except Exception as exc:  # bad input (ContractError) or a resolver bug: never stop
                    reason = (
                        str(exc)
                        if isinstance(exc, ContractError)
                        else f"resolve failed: {type(exc).__name__}: {exc}"
                    )
                    letter = dead_letter(
                        message.topic, "resolve", reason, event.value, message.partition, message.offset
                    )
                    await deadletter.send(key=letter.event_id.encode(), value=letter.to_bytes())
                    status.count("resolve_rejected")
                    continue
                for out in outputs:
                    by_account.setdefault(out.account_id, []).append(out.envelope)
            for account_id, records in by_account.items():
                for value in batches(account_id, records):
                    await interactions.send(key=account_id.encode(), value=value)
            yield len(events)

    @app.agent(interactions, concurrency=1)
    async def score(agent_stream: faust.StreamT) -> Any:
        stream = cast(faust.Stream, agent_stream)  # the concrete class: take_events, current event
        async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_batch_seconds):
            now = time.time()
            loop.started = loop.started or now
            records: list[tuple[str, Envelope]] = []
            letters: list[Envelope] = []
            ticks: dict[int, faust.EventT] = {}
            anchor: dict[str, faust.EventT] = {}  # account -> an event on its partition
            for event in events:
                message = event.message
                try:
                    envelope = decode(event.value)
                except ContractError as exc:
                    letters.append(
                        dead_letter(
                            message.topic, "score", str(exc), event.value, message.partition, message.offset
                        )
                    )
                    continue
                if envelope.schema == "tick/1":
                    if loop.fresh(envelope.payload["wall_time"], now):
                        ticks[message.partition] = event
                    continue
                account_id = event.key.decode("utf-8", "replace") if isinstance(event.key, bytes) else ""
                if not account_id:
                    letters.append(
                        dead_letter(
                            message.topic,
                            "score",
                            "record without an account key",
                            event.value,
                            message.partition,
                            message.offset,
                        )
                    )
                    continue
                loop.last_event[message.partition] = now
                anchor[account_id] = event
                members, broken = unbatch(envelope)
                records.extend((account_id, member) for member in members)
                letters.extend(
                    dead_letter(message.topic, "score", reason, data, message.partition, message.offset)
                    for data, reason in broken
                )
            with PartitionedTable(states, stream, anchor) as table:
                result = score_batch(records, table, settings.allowed_lateness_s, profile)
                flushed = _flush_idle(ticks, now, table)
            status.count("idle_flushes", len(flushed.states))
            letters.extend(
                dead_letter(TOPIC_INTERACTIONS, "score", reason, env.to_bytes())
                for env, reason in result.failed
            )
            rows = _merge(result, flushed)
            if letters:
                rows.setdefault("rejected_events", []).extend(rejected_row(d) for d in letters)
            if rows:
                written = await warehouse().write(rows, batch_origin(events))
                status.add_rows(written.rows, written.retries)
            for letter in letters:
                await deadletter.send(key=letter.event_id.encode(), value=letter.to_bytes())
            new_states = {k: v.to_dict() for k, v in {**result.states, **flushed.states}.items()}
            with PartitionedTable(states, stream, anchor) as table:
                for account_id, state in new_states.items():
                    table.set(account_id, state)
            loop.note(new_states, profile)
            for row in _latest_health(rows.get("account_health", [])):
                await scores.send(key=row["account_id"].encode(), value=health_envelope(row).to_bytes())
            status.count("events", len(records))
            status.count("duplicates", result.duplicates)
            status.count("late", result.late)
            status.set(
                "pending_events", sum((loop.pending or {}).values()) if loop.pending is not None else -1
            )
            status.write()
            # Idle means no batch *finished* lately: a slow write must not look like silence.
            finished = time.time()
            for partition in loop.last_event.keys() & {e.message.partition for e in events}:
                loop.last_event[partition] = finished
            yield len(records)

    def _flush_idle(ticks: dict[int, faust.EventT], now: float, table: PartitionedTable) -> BatchResult:
        idle = {p for p in ticks if loop.idle(p, now)}
        if not idle:
            return BatchResult()
        if loop.pending is None:  # first tick since start: find pending accounts once
            loop.pending = {k: n for k, v in states.items() if (n := flushable(unpack(v), now, profile))}
        due = [a for a in loop.pending if partition_of(a, settings.partitions) in idle]
        for account_id in due:
            table.anchors[account_id] = ticks[partition_of(account_id, settings.partitions)]
        return flush_accounts(due, table, profile, now)

    @app.agent(deadletter, concurrency=1)
    async def deadletters(agent_stream: faust.StreamT) -> Any:
        stream = cast(faust.Stream, agent_stream)  # the concrete class: take_events, current event
        async for events in stream.take_events(settings.sink_batch_size, within=settings.sink_batch_seconds):
            rows = []
            for event in events:
                try:
                    rows.append(rejected_row(decode(event.value)))
                except (ContractError, ValueError) as exc:
                    message = event.message
                    rows.append(
                        rejected_row(
                            dead_letter(
                                message.topic,
                                "deadletter",
                                str(exc),
                                event.value,
                                message.partition,
                                message.offset,
                            )
                        )
                    )
            written = await warehouse().write({"rejected_events": rows}, batch_origin(events))
            status.add_rows(written.rows, written.retries)
            status.write()
            yield len(rows)

    @app.timer(interval=max(0.5, idle_flush_s / 2))
    async def tick() -> None:
        """While traffic is idle and events are pending (or unknown yet), wake every partition."""
        now = time.time()
        if loop.pending is not None and not loop.pending:
            return
        if any(not loop.idle(p, now) for p in loop.last_event):
            return
        envelope = make(
            "tick/1", f"tick:{time.time_ns()}", "rapport", format_time(datetime.now(UTC)), {"wall_time": now}
        )
        for partition in range(settings.partitions):
            await interactions.send(value=envelope.to_bytes(), partition=partition)

    # Handles for tests (faust test_context) and benchmarks.
    app.rapport_agents = {"resolve": resolve, "score": score, "deadletters": deadletters}  # type: ignore[attr-defined]
    app.rapport_topics = {"interactions": interactions, "deadletter": deadletter, "scores": scores}  # type: ignore[attr-defined]
    return app


def _merge(*results: BatchResult) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for table, table_rows in result.rows.items():
            rows.setdefault(table, []).extend(table_rows)
    return rows


def _latest_health(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = latest.get(row["account_id"])
        if held is None or (row["as_of"], row["version"]) >= (held["as_of"], held["version"]):
            latest[row["account_id"]] = row
    return list(latest.values())
