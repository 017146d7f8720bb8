"""The one scoring loop over in-memory ports: live = replay, commit order, published events.

Fast counterparts of the broker tests (tests/runtime/live_vs_replay.py): the same ``run`` the
score agent, replay and forget use, with random batch boundaries and idle ticks.
"""

from __future__ import annotations

import asyncio
import itertools
from functools import cache
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import Envelope, decode, parse_time
from streams.identity.resolver import Resolver
from streams.runtime.changelog import partition_of
from streams.runtime.loop import Outcome, Ports, Step, run
from streams.scoring.engine import Scoring
from streams.sinks.warehouse import collapse
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import ListSink, MemoryStore, memory_ports, run_in_memory

LATENESS = 86400.0
END = 2_000_000_000.0  # a clock far past the input: every value window has ended
WALL = 1_900_000_000.0  # the wall clock when the (historical) input is fed to the live worker


@cache
def records() -> tuple[tuple[str, Envelope], ...]:
    # dirty: with a counterparty that corresponds for a month and then goes silent
    events, _ = generate(5, seed=11, days=60, dirty=True)
    resolver = Resolver([SELLER_DOMAIN])
    out = []
    for e in events:
        try:
            out.extend((o.account_id, o.envelope) for o in resolver.resolve(e))
        except ValueError:
            continue  # mail that is no interaction (dead-lettered in the pipeline)
    return tuple(out)


def grouped() -> list[tuple[str, Envelope]]:
    """In event-time order, as ingestion keys and sorts it: silent accounts only advance with
    the stream's watermark (of their partition, live; of the input, replay)."""
    return sorted(records(), key=lambda r: r[1].occurred_at)


def canonical(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {
        table: sorted(
            orjson.dumps(r, option=orjson.OPT_SORT_KEYS, default=str).decode() for r in collapse(table, got)
        )
        for table, got in rows.items()
    }


@cache
def replayed_rows() -> dict[str, list[dict[str, Any]]]:
    """Replay: everything in one step, the end of input settled as of ``END`` (``--as-of``)."""
    stream = grouped()
    rows = run_in_memory(stream, [len(stream)], LATENESS, end=END).sink.rows
    return {table: collapse(table, got) for table, got in rows.items()}


def replayed() -> dict[str, list[str]]:
    return canonical(replayed_rows())


def live_steps(
    stream: list[tuple[str, Envelope]], sizes: list[int], ticks: list[bool], idle_s: list[float]
) -> list[Step]:
    """Batches as resolve cuts them, each at its wall time (a historical input fed years later):
    a batch's records regrouped by account, one message per account, each message a step of its
    own carrying the batch's floor (its earliest event time) as the score agent gets them; after
    a batch, maybe an idle tick ``idle_s`` of wall time later that settles the accounts seen so
    far (an idle partition) on their partition's idle clock; at the end the idle tick of a
    pipeline left idle until ``END`` (replay as of ``END`` must give its rows)."""
    steps, position, index, wall = [], 0, 0, WALL
    while position < len(stream):
        size = sizes[index % len(sizes)]
        chunk = stream[position : position + size]
        position += size
        floor = min(parse_time(e.occurred_at).timestamp() for _, e in chunk)
        by_account: dict[str, list[tuple[str, Envelope]]] = {}
        for record in chunk:
            by_account.setdefault(record[0], []).append(record)
        for account_id, message in by_account.items():
            marks = [(account_id, floor)]
            steps.append(Step(message, marks=marks, now=wall, origin=f"batch:{position}:{account_id}"))
        wall += idle_s[index % len(idle_s)]
        if ticks[index % len(ticks)]:
            idle = list(dict.fromkeys(a for a, _ in stream[:position]))
            steps.append(Step(notify=idle, now=wall, origin=f"tick:{position}"))
        index += 1
    steps.append(Step(notify=list(dict.fromkeys(a for a, _ in stream)), now=END, origin="idle"))
    return steps


@settings(max_examples=8, deadline=None)
@given(
    st.lists(st.integers(1, 900), min_size=1, max_size=6),
    st.lists(st.booleans(), min_size=1, max_size=6),
    st.lists(st.floats(0.0, 60.0), min_size=1, max_size=6),
)
def test_live_steps_give_the_rows_of_replay(sizes: list[int], ticks: list[bool], idle_s: list[float]) -> None:
    """Idle ticks seconds apart on a historical input advance its idle clock by seconds, not to
    the wall clock (a tick at the wall clock would close days the next batches fill); messages
    that reorder a batch by account close nothing a later message of the batch still needs."""
    ports = memory_ports(through_json=True)  # states stored as the RocksDB table keeps them
    steps = live_steps(grouped(), sizes, ticks, idle_s)
    # live: four partitions, each closing its accounts' days on its own watermark and idle clock
    scoring = Scoring(ports.store, LATENESS, partition_of=lambda a: partition_of(a, 4))
    totals = asyncio.run(run(steps, scoring, ports))
    assert totals.steps == len(steps)
    assert canonical(ports.sink.rows) == replayed()


def test_a_silent_counterparty_decays_day_by_day_and_is_alerted_within_30_days() -> None:
    """quietco-partners.com writes and is answered every 4 days for a month, then nobody writes
    (no seller follow-up either) while the other accounts keep the stream moving."""
    rows = orjson.loads(orjson.dumps(replayed_rows(), default=str))
    health = sorted(
        (r for r in rows["account_health"] if r["account_id"] == "quietco-partners.com"),
        key=lambda r: r["as_of"],
    )
    silent_from = max(
        parse_time(e.occurred_at).timestamp() for a, e in grouped() if a == "quietco-partners.com"
    )
    after = [r for r in health if parse_time(r["as_of"] + "T23:59:59Z").timestamp() > silent_from + 86400]
    assert len(after) >= 20, "a row per day after the silence starts"
    scores = [r["score"] for r in after]
    assert all(b <= a for a, b in itertools.pairwise(scores)) and scores[-1] < scores[0]
    raised = [
        parse_time(r["raised_at"]).timestamp()
        for r in rows.get("alerts", [])
        if r["account_id"] == "quietco-partners.com" and r["status"] == "open"
    ]
    assert raised and min(raised) - silent_from <= 30 * 86400, raised


def test_the_idle_clock_advances_at_wall_speed_from_the_last_event() -> None:
    """A historical input left idle: seconds of wall time close no day beyond its watermark's
    (the wall clock is years later), 30 days of wall time close 30 more days."""
    stream = grouped()
    half = stream[: len(stream) // 2]
    mark = max(parse_time(e.occurred_at).timestamp() for _, e in half)
    accounts = list(dict.fromkeys(a for a, _ in half))
    open_days = {}
    for idle_s in (0.0, 10.0, 30 * 86400.0):
        ports = memory_ports()
        scoring = Scoring(ports.store, LATENESS)
        steps = [Step(half, now=WALL), Step(notify=accounts, now=WALL + idle_s)]
        asyncio.run(run(steps, scoring, ports))
        assert scoring.idle_now(accounts[0], mark, WALL + idle_s) == mark + idle_s
        open_days[idle_s] = max(ports.store[a]["open_day"] or 0 for a in accounts)
    watermark_day = int((mark - LATENESS) // 86400)
    assert open_days[0.0] == open_days[10.0] <= watermark_day + 1  # the wall clock is years on
    assert open_days[30 * 86400.0] == watermark_day + 30


def test_an_idle_tick_settles_a_silent_account_before_the_end() -> None:
    stream = grouped()
    first = stream[0][0]
    cut = max(i for i, (a, _) in enumerate(stream) if a == first) + 1
    ports = memory_ports()
    steps = [Step(stream[:cut]), Step(notify=[first], now=END)]
    totals = asyncio.run(run(steps, Scoring(ports.store, LATENESS), ports))
    assert totals.settled == 1
    assert not ports.store[first]["pending"] and not ports.store[first]["values"]["open"]


class OrderedSink(ListSink):
    """Records what the store held when the rows were written."""

    def __init__(self, store: MemoryStore, log: list[str]) -> None:
        super().__init__()
        self.store, self.log = store, log

    async def write(self, rows: dict[str, list[dict[str, Any]]], origin: str) -> Any:
        self.log.append(f"write:{len(self.store)}")
        return await super().write(rows, origin)


def test_commit_writes_rows_before_storing_states_before_publishing_before_offsets() -> None:
    log: list[str] = []
    ports = memory_ports()
    ports.sink = OrderedSink(ports.store, log)
    publish = ports.publisher.publish

    async def published(*args: Any) -> None:
        log.append(f"publish:{len(ports.store)}")
        await publish(*args)

    ports.publisher.publish = published  # type: ignore[method-assign]

    def offsets(outcome: Outcome) -> None:
        log.append(f"offsets:{len(outcome.stored)}")

    stream = grouped()[:300]
    accounts = len({a for a, _ in stream})
    asyncio.run(run([Step(stream, done=offsets)], Scoring(ports.store, LATENESS), ports))
    assert log == ["write:0", f"publish:{accounts}", f"offsets:{accounts}"]


def test_scores_and_alerts_are_published_as_their_warehouse_rows() -> None:
    events, _ = generate(10, seed=11, days=200)  # raises and resolves a few alerts
    resolver = Resolver([SELLER_DOMAIN])
    stream = [(out.account_id, out.envelope) for e in events for out in resolver.resolve(e)]
    ports = run_in_memory(stream, [700], LATENESS, end=END)
    assert {r["status"] for r in ports.sink.rows["alerts"]} == {"open", "resolved"}
    alert_rows = {(r["alert_id"], r["version"]): r for r in ports.sink.rows["alerts"]}
    assert alert_rows and len(ports.publisher.alerts) == len(ports.sink.rows["alerts"])
    for event in ports.publisher.alerts:
        again = decode(event.to_bytes())  # valid against schemas/events/alert.v1.json
        payload = again.payload
        row = alert_rows[(payload["alert_id"], payload["version"])]
        for name in ("alert_id", "account_id", "kind", "severity", "status", "subject", "reason"):
            assert payload[name] == row[name]
        assert payload["explanation"] == orjson.loads(row["explanation"])
        assert parse_time(payload["raised_at"]) == row["raised_at"]
        assert (payload["ended_at"] is None) == (row["status"] == "open")
    health = ports.publisher.scores
    assert health and {e.schema for e in health} == {"account_health/1"}


def test_a_record_the_core_cannot_use_becomes_a_dead_letter_and_a_rejected_row() -> None:
    broken = Envelope("interaction/1", "e1", "test", "2025-07-01T00:00:00.000Z", {"account_id": "a.com"})
    ports = memory_ports()
    ports_used: Ports = ports
    steps = [Step([("a.com", broken), *records()[:20]])]
    totals = asyncio.run(run(steps, Scoring(ports.store, LATENESS), ports_used))
    assert totals.applied == 20 and totals.letters == 1  # reported, not raised: the rest applied
    (letter,) = ports.publisher.letters
    assert letter.payload["stage"] == "score" and "scoring failed" in letter.payload["reason"]
    assert [r["rejected_id"] for r in ports.sink.rows["rejected_events"]] == [letter.payload["rejected_id"]]
