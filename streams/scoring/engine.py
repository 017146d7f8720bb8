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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.contracts import Envelope
from streams.scoring.profile import DAY, DEFAULT, Profile
from streams.scoring.state import AccountState

Rows = dict[str, list[dict[str, Any]]]  # table -> rows, in the order they were made


class StateStore(Protocol):
    """Where states are read from: a dict, or a faust table read partition by partition."""

    def get(self, key: str, /) -> Any: ...


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


def flushable(state: Mapping[str, Any], now: float, profile: Profile = DEFAULT) -> int:
    """How much a settle at ``now`` would do: pending events plus value windows that ended."""
    window = profile.value.response_window_days * DAY
    ended = sum(1 for v in (state.get("open_values") or {}).values() if v["at"] + window < now)
    return len(state.get("pending") or []) + ended


class Scoring:
    """Per-account scoring over a state store, one step (batch) at a time."""

    def __init__(self, stored: StateStore, lateness_s: float, profile: Profile = DEFAULT) -> None:
        self.stored, self.lateness_s, self.profile = stored, lateness_s, profile
        self._step = Snapshot()
        self._settled_before: dict[str, int] = {}  # accounts touched by on_item since the last close

    def _state(self, account_id: str) -> AccountState | None:
        state = self._step.states.get(account_id)
        if state is None:
            saved = self.stored.get(account_id)
            state = AccountState.from_dict(saved) if saved else None
        return state

    def on_item(self, account_id: str, envelope: Envelope) -> None:
        """Apply one canonical record to its account; a record the core cannot use is kept in
        the snapshot's ``failed`` with the reason (it must not stop the stream)."""
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
        if rows is None:
            step.duplicates += 1
            return
        step.applied += 1
        for table, row in rows:
            step.rows.setdefault(table, []).append(row)

    def _close_items(self) -> None:
        # The open day's health once per account and step, not once per event.
        step = self._step
        for account_id, before in self._settled_before.items():
            state = step.states[account_id]
            if state.settled > before and (health := state.provisional_health(self.profile)):
                step.rows.setdefault("account_health", []).append(health[1])
        self._settled_before.clear()

    def on_notify(self, now: float, accounts: Iterable[str]) -> None:
        """Settle everything pending for ``accounts`` and close the value windows that ended
        before ``now`` (the clock on the live idle timer, the clock at the end of a replay)."""
        self._close_items()
        step = self._step
        for account_id in accounts:
            state = step.states.get(account_id)
            if state is None:
                saved = self.stored.get(account_id)
                if not saved or not flushable(saved, now, self.profile):
                    continue
                state = AccountState.from_dict(saved)
            elif not flushable(state.to_dict(), now, self.profile):
                continue
            for table, row in state.flush(self.profile, now):
                step.rows.setdefault(table, []).append(row)
            step.states[account_id] = state
            step.settled += 1

    def on_eof(self, accounts: Iterable[str], now: float = math.inf) -> None:
        """The input ended: settle ``accounts`` (every stored account) and this step's at ``now``."""
        self.on_notify(now, dict.fromkeys([*self._step.states, *accounts]))

    def snapshot(self) -> Snapshot:
        """This step's rows and new states; the next call to on_item starts a new step."""
        self._close_items()
        step, self._step = self._step, Snapshot()
        return step
