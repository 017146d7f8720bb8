"""The scoring loop, written once: steps in, rows written, states stored, events published.

:func:`run` drives :class:`streams.scoring.engine.Scoring` over a sequence of :class:`Step` and
hands each step's snapshot to :func:`commit`. The live ``score`` agent, ``replay``, ``forget``,
the benchmarks and the tests all call it; they differ only in their ports
(:mod:`streams.runtime.ports`) and in how they cut their input into steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.config import TOPIC_INTERACTIONS
from streams.contracts import Envelope
from streams.deadletters import dead_letter, rejected_row
from streams.runtime.outbound import latest_health
from streams.runtime.ports import Clock, Publisher, RowSink, StateStore, SystemClock, Written
from streams.scoring.engine import Scoring, Snapshot, add_rows


@dataclass
class Ports:
    store: StateStore
    sink: RowSink
    publisher: Publisher
    clock: Clock = field(default_factory=SystemClock)


@dataclass
class Step:
    """One batch of input: records to apply, accounts to settle, what to do once committed."""

    records: Collection[tuple[str, Envelope]] = ()
    letters: list[Envelope] = field(default_factory=list)  # bad input found on the way in
    # (account, event time) pairs: the input of the account's partition is complete up to that
    # time (live: each message's resolve-batch floor). Empty: each record's own time advances it.
    marks: Sequence[tuple[str, float]] = ()
    notify: Iterable[str] = ()  # accounts to settle at ``now`` (idle partitions)
    eof: bool = False  # the input ended: settle every account (at ``now`` if given, else its watermark)
    now: float | None = None  # None: the clock's time when the step is applied
    origin: str = ""  # the input's identity, for the sink's deduplication token
    done: Callable[[Outcome], Awaitable[None] | None] | None = None  # offsets / bookkeeping


@dataclass
class Outcome:
    """A committed step: its snapshot, the states as stored, what the sink reported."""

    step: Step
    snapshot: Snapshot
    stored: dict[str, dict[str, Any]]
    letters: list[Envelope]
    written: Written | None


@dataclass
class Totals:
    steps: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    settled: int = 0
    letters: int = 0


async def _steps(steps: Iterable[Step] | AsyncIterable[Step]) -> AsyncIterable[Step]:
    if isinstance(steps, AsyncIterable):
        async for step in steps:
            yield step
    else:
        for step in steps:
            yield step


async def run(steps: Iterable[Step] | AsyncIterable[Step], scoring: Scoring, ports: Ports) -> Totals:
    """Apply each step to ``scoring`` (whose states come from ``ports.store``) and commit it.

    The next step is asked for only after the previous one committed: a faust stream acks a
    batch's offsets when it is asked for the next one.
    """
    totals = Totals()
    async for step in _steps(steps):
        now = ports.clock.now() if step.now is None else step.now
        scoring.begin(now)
        for account_id, envelope in step.records:
            scoring.on_item(account_id, envelope, advance=not step.marks)
        for account_id, at in step.marks:
            scoring.advance(account_id, at)
        if step.notify:
            scoring.on_notify(now, step.notify)
        if step.eof:
            scoring.on_eof(ports.store.keys(), step.now)
        snapshot = scoring.snapshot()
        outcome = await commit(step, snapshot, ports)
        totals.steps += 1
        totals.applied += snapshot.applied
        totals.duplicates += snapshot.duplicates
        totals.late += snapshot.late
        totals.settled += snapshot.settled
        totals.letters += len(outcome.letters)
    return totals


async def commit(step: Step, snapshot: Snapshot, ports: Ports) -> Outcome:
    """Make one step durable, in this order:

    1. rows written (scores, interactions, and the step's dead letters as ``rejected_events``);
       the sink retries until they land,
    2. states stored (only now: a crash before this replays the step, and its rows are
       rewritten with the same deduplication token),
    3. scores, alerts and dead letters published,
    4. offsets committed (``step.done``; a faust stream acks when asked for the next batch).
    """
    letters = step.letters + [
        dead_letter(TOPIC_INTERACTIONS, "score", reason, envelope.to_bytes())
        for envelope, reason in snapshot.failed
    ]
    rows = snapshot.rows
    if letters:
        add_rows(rows, "rejected_events", (rejected_row(letter) for letter in letters))
    written = await ports.sink.write(rows, step.origin) if rows else None
    stored = {account_id: state.to_dict() for account_id, state in snapshot.states.items()}
    ports.store.put(stored)
    alerts = rows.get("alerts", [])
    owners = {a: s.sellers.owner for a, s in snapshot.states.items()} if alerts else {}
    await ports.publisher.publish(
        latest_health(rows.get("account_health", [])),
        [(row, owners.get(row["account_id"])) for row in alerts],
        letters,
    )
    outcome = Outcome(step, snapshot, stored, letters, written)
    if step.done is not None:
        pending = step.done(outcome)
        if pending is not None:
            await pending
    return outcome
