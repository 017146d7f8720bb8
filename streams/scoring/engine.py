"""The scoring core's step API: one object the live agent, replay, forget and the tests drive.

In the spirit of bytewax's ``StatefulLogic``: :meth:`Scoring.on_item` applies a canonical record,
:meth:`Scoring.on_notify` settles what is due at ``now`` for the accounts it is given (the live
idle timer; the natural place for days that advance with stream time), :meth:`Scoring.on_eof`
settles every account at the end of the input, and :meth:`Scoring.snapshot` hands back the rows
and the new states of the step and starts the next one.

It stores nothing: states are read through ``stored`` (a dict, a faust table, any
:class:`StateStore`) and the caller persists the snapshot's states only after its rows are
written (:func:`streams.runtime.engine.commit`), so a crash in between replays the step.
Pure: no I/O, no clock of its own (``now`` comes in).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.contracts import Envelope, parse_time
from streams.scoring.profile import DAY, DEFAULT, Profile
from streams.scoring.state import AccountState

Rows = dict[str, list[dict[str, Any]]]  # table -> rows, in the order they were made


class StateStore(Protocol):
    """Where states are read from: a dict, or a faust table read partition by partition."""

    def get(self, key: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


@dataclass
class Snapshot:
    """What one step made: rows to write, states to store, records the core could not use."""

    rows: Rows = field(default_factory=dict)
    states: dict[str, AccountState] = field(default_factory=dict)
    failed: list[tuple[Envelope, str]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    settled: int = 0  # accounts that on_notify / on_eof settled


def add_rows(rows: Rows, table: str, more: Iterable[dict[str, Any]]) -> None:
    """Append ``more`` to ``rows[table]``: the one place rows of a table are merged."""
    rows.setdefault(table, []).extend(more)


def closed_through(at: float, lateness_s: float) -> int:
    """The last day that stream time (or the idle clock) ``at`` closes: day D closes once
    ``at`` passes its end plus the allowed lateness."""
    if math.isinf(at):
        return 10**9 if at > 0 else -(10**9)
    return int((at - lateness_s) // DAY) - 1


def flushable(
    state: Mapping[str, Any], now: float, profile: Profile = DEFAULT, lateness_s: float = 0.0
) -> int:
    """How much a settle at ``now`` would do for a stored state (:func:`work_due`)."""
    return work_due(AccountState.from_dict(dict(state)), now, profile, lateness_s)


def work_due(account: AccountState, now: float, profile: Profile = DEFAULT, lateness_s: float = 0.0) -> int:
    """How much a settle at ``now`` would do: pending events, value windows that ended before the
    last day ``now`` closes, and one if a day is due (a silent account's day advances too)."""
    through = closed_through(now, lateness_s)
    ended = account.values.ended_before(min(now, (through + 1) * DAY), profile)
    due = account.next_due()
    return len(account.pending) + ended + int(due is not None and due <= through)


def keeps_time(envelope: Envelope) -> bool:
    """Whether a record's time moves stream time: automated mail's does not, because bulk
    senders' dates are not to be trusted (presto-k: 40 list messages dated 2004, two years after
    the mailbox ends, closed every account's days through 2004 and left all 13 "disengaged")."""
    return not (envelope.schema == "interaction/1" and envelope.payload.get("automated"))


class Scoring:
    """Per-account scoring over a state store, one step (batch) at a time."""

    def __init__(
        self,
        stored: StateStore,
        lateness_s: float,
        profile: Profile = DEFAULT,
        partition_of: Callable[[str], int] = lambda _: 0,
    ) -> None:
        """``partition_of`` maps an account to its input partition, whose event-time watermark
        closes the days of every account on it (replay: one partition, the input's watermark)."""
        self.stored, self.lateness_s, self.profile = stored, lateness_s, profile
        self.partition_of = partition_of
        self._step = Snapshot()
        self._settled_before: dict[str, int] = {}  # accounts touched by on_item since the last close
        # Kept in memory by this process: a restarted worker's partitions close again from the
        # first watermark it sees (days are closed at most once: the state knows its open day).
        self.watermarks: dict[int, float] = {}  # partition -> event time its input is complete to
        self.latest: dict[int, float] = {}  # partition -> latest event time seen (idle: complete)
        # The idle clock: partition -> wall time its watermark last advanced (see idle_now).
        self.advanced: dict[int, float] = {}
        self.wall: float | None = None  # the wall time of the step being applied (begin)
        self.started: float | None = None  # the first step's wall time
        self._closed: dict[int, int] = {}  # partition -> last day closed for every account on it
        self._due: dict[str, int | None] | None = None  # account -> next day to close (None: none)

    def _state(self, account_id: str) -> AccountState | None:
        state = self._step.states.get(account_id)
        if state is None:
            saved = self.stored.get(account_id)
            state = AccountState.from_dict(saved) if saved else None
        return state

    def begin(self, wall: float) -> None:
        """The wall time of the step about to be applied: a watermark it advances advanced then."""
        self.wall = wall
        self.started = wall if self.started is None else self.started

    def idle_now(self, account_id: str, account_watermark: float, wall: float) -> float:
        """The idle clock of ``account_id``'s partition at wall time ``wall``: its event-time
        watermark plus the wall time that passed since the watermark last advanced, never past
        ``wall``. A real-time stream's idle clock is the wall clock; a historical import left
        idle for seconds advances seconds (a second half ingested later is not late, and a
        restarted worker catching up closes nothing early); one left idle for 30 days, 30 days.
        A partition without events since this process started runs from the account's own
        watermark at the first step's wall time (idle time before a restart is not counted)."""
        at = self.partition_clock(self.partition_of(account_id), wall, account_watermark)
        return wall if at is None else at  # never None: a fallback is given

    def partition_clock(self, partition: int, wall: float, fallback: float | None = None) -> float | None:
        """:meth:`idle_now` of a partition (``fallback``: the watermark to start from when this
        process has seen nothing of it; ``None`` then if no fallback)."""
        # idle, a partition has received everything sent to it: its latest time-keeping record
        known = [m for m in (self.watermarks.get(partition), self.latest.get(partition)) if m is not None]
        if not known and fallback is None:
            return None
        mark = max(known) if known else float(fallback or 0.0)
        since = self.advanced.get(partition, self.started if self.started is not None else wall)
        return min(wall, mark + max(0.0, wall - since))

    def on_item(self, account_id: str, envelope: Envelope, advance: bool = True) -> None:
        """Apply one canonical record to its account; a record the core cannot use is kept in
        the snapshot's ``failed`` with the reason (it must not stop the stream). ``advance``:
        the record's time advances its partition's watermark (input in arrival order, as replay
        reads it); live passes ``False`` and gives the watermark by :meth:`advance` instead."""
        step = self._step
        state = step.states.get(account_id)
        if state is None:
            state = self._state(account_id) or AccountState(account_id)
            step.states[account_id] = state
        if account_id not in self._settled_before:
            self._settled_before[account_id] = state.settled
        late_before = state.late
        try:
            rows = state.apply(envelope, self.lateness_s, self.profile)
        except Exception as exc:
            step.failed.append((envelope, f"scoring failed: {type(exc).__name__}: {exc}"))
            return
        step.late += state.late - late_before
        if keeps_time(envelope):
            partition = self.partition_of(account_id)
            at = parse_time(envelope.occurred_at).timestamp()
            if at > self.latest.get(partition, -math.inf):
                self.latest[partition] = at
                if self.wall is not None:
                    self.advanced[partition] = self.wall
            if advance:
                self.advance(account_id, at)
        if self._due is not None:
            self._due[account_id] = state.next_due()
        if rows is None:
            step.duplicates += 1
            return
        step.applied += 1
        for table, row in rows:
            step.rows.setdefault(table, []).append(row)

    def advance(self, account_id: str, at: float) -> None:
        """The input of ``account_id``'s partition is complete up to event time ``at``: its
        watermark moves there if that is later (it never moves back), but not past the latest
        time a record that keeps time (:func:`keeps_time`) carried."""
        partition = self.partition_of(account_id)
        at = min(at, self.latest.get(partition, -math.inf))
        if at > self.watermarks.get(partition, -math.inf):
            self.watermarks[partition] = at
            if self.wall is not None:
                self.advanced[partition] = self.wall

    def replaced(self, states: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Account states were replaced in the store behind this engine (rescored): forget what it
        knew of their next day to close."""
        if self._due is not None:
            for account_id, state in states.items():
                self._due[account_id] = AccountState.from_dict(dict(state)).next_due() if state else None

    def _close_items(self) -> None:
        # The open day's health once per account and step, not once per event.
        step = self._step
        for account_id, before in self._settled_before.items():
            state = step.states[account_id]
            if state.settled > before and (health := state.provisional_health(self.profile)):
                add_rows(step.rows, health[0], [health[1]])
        self._settled_before.clear()

    def _close_watermarks(self, partitions: Iterable[int] | None = None, through: int | None = None) -> None:
        """Close, for every account on ``partitions`` (default: those whose watermark passed a new
        day), the days their watermark (or ``through``) passed. Visits only accounts whose next
        day is due; each close depends only on the state and the day."""
        targets: dict[int, int] = {}
        for partition, mark in self.watermarks.items():
            if partitions is not None and partition not in partitions:
                continue
            day = closed_through(mark, self.lateness_s) if through is None else through
            if day > self._closed.get(partition, -(10**9)):
                targets[partition] = day
        if not targets:
            return
        if self._due is None:  # once per process: every known account may be due
            unknown: int | None = -(10**9)
            self._due = {a: unknown for a in [*self.stored.keys(), *self._step.states]}
        step = self._step
        for account_id, due in list(self._due.items()):
            through_day = targets.get(self.partition_of(account_id))
            if due is None or through_day is None or due > through_day:
                continue
            state = self._state(account_id)
            if state is None:
                del self._due[account_id]
                continue
            rows = state.close_through(through_day, self.profile)
            self._due[account_id] = state.next_due()
            if rows or account_id in step.states:
                step.states[account_id] = state
                for table, row in rows:
                    add_rows(step.rows, table, [row])
        self._closed.update(targets)

    def on_notify(self, now: float, accounts: Iterable[str]) -> None:
        """Live idle timer at wall time ``now``: for ``accounts``, close the days their partition's
        idle clock (:meth:`idle_now`) passed, settle everything pending and close the value
        windows that ended within the closed days (not beyond them: a later window would change
        the open day's final row)."""
        accounts = list(accounts)
        for account_id in accounts:  # an idle partition has received all it was sent, when its
            partition = self.partition_of(account_id)  # last record came (advanced stays)
            if (latest := self.latest.get(partition)) is not None and latest > self.watermarks.get(
                partition, -math.inf
            ):
                self.watermarks[partition] = latest
        self._settle(accounts, lambda account_id, watermark: self.idle_now(account_id, watermark, now))

    def on_eof(self, accounts: Iterable[str], now: float | None = None) -> None:
        """The input ended: what a drained live worker does on its idle tick, with no idle time
        (replay has none), so replay ends with the rows live ends with. Each partition closes
        through its watermark, then every account in ``accounts`` (every stored account) and this
        step's is settled as by :meth:`on_notify` at its partition's watermark; ``now`` (``rapport
        replay --as-of``) closes every account's days through that time instead, at most
        ``MAX_GAP_DAYS`` after its last scored interaction."""
        self._close_items()
        self._close_watermarks()
        at: Callable[[str, float], float]
        if now is None:
            at = lambda account_id, watermark: self.watermarks.get(self.partition_of(account_id), watermark)  # noqa: E731
        else:
            at = lambda _account_id, _watermark: now  # noqa: E731
        self._settle(dict.fromkeys([*self._step.states, *accounts]), at)

    def _settle(self, accounts: Iterable[str], at: Callable[[str, float], float]) -> None:
        """Settle each account as of ``at(account_id, its watermark)``: the one place an idle
        close happens (the live tick and the end of a replay differ only in their clock)."""
        self._close_items()
        step = self._step
        for account_id in accounts:
            state = step.states.get(account_id)
            if state is None:
                saved = self.stored.get(account_id)
                if not saved:
                    continue
                now = at(account_id, float(saved.get("watermark", 0.0)))
                state = AccountState.from_dict(saved)  # decoded once, kept only if it has work
                if not work_due(state, now, self.profile, self.lateness_s):
                    continue
            else:
                now = at(account_id, state.watermark)
            through = closed_through(now, self.lateness_s)
            rows = state.close_through(through, self.profile)
            rows += state.flush(self.profile, min(now, (through + 1) * DAY))
            for table, row in rows:
                add_rows(step.rows, table, [row])
            step.states[account_id] = state
            if self._due is not None:
                self._due[account_id] = state.next_due()
            step.settled += 1

    def snapshot(self) -> Snapshot:
        """This step's rows and new states; the next call to on_item starts a new step."""
        self._close_watermarks()
        self._close_items()
        step, self._step = self._step, Snapshot()
        return step
