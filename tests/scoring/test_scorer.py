"""The pure core: duplicates and reordering within the allowed lateness change nothing."""

from __future__ import annotations

import random
from functools import cache

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contracts import Envelope, parse_time
from streams.identity.resolver import Resolver
from streams.sinks.warehouse import collapse
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import memory_ports, run_in_memory

LATENESS = 86400.0


@cache
def records() -> tuple[tuple[str, Envelope], ...]:
    events, _ = generate(4, seed=21, days=90)
    resolver = Resolver([SELLER_DOMAIN])
    return tuple((out.account_id, out.envelope) for e in events for out in resolver.resolve(e))


def final_rows(stream: list[tuple[str, Envelope]], batch_sizes: list[int]) -> dict[str, list[str]]:
    """Run the core like the live agent: batches, states stored as JSON between them, then flush."""
    rows = run_in_memory(stream, batch_sizes, LATENESS, ports=memory_ports(through_json=True)).sink.rows
    return {
        table: sorted(
            orjson.dumps(r, option=orjson.OPT_SORT_KEYS, default=str).decode()
            for r in collapse(table, table_rows)
        )
        for table, table_rows in rows.items()
    }


@cache
def baseline() -> dict[str, list[str]]:
    return final_rows(list(records()), [500])


def test_scores_are_bounded_and_explained() -> None:
    health = [orjson.loads(r) for r in baseline()["account_health"]]
    assert len(health) > 50
    for row in health:
        assert 0 <= row["score"] <= 100
        explanation = orjson.loads(row["explanation"])
        assert explanation["signals"] and explanation["events"]
        assert row["tier"] in {"healthy", "watch", "at_risk", "disengaged"}
    assert {r["tier"] for r in health} != {"healthy"}  # the model does discriminate


def test_every_interaction_gets_one_row() -> None:
    ids = {e.payload["interaction_id"] for _, e in records() if e.schema == "interaction/1"}
    assert len(baseline()["interactions"]) == len(ids)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(50, 700), min_size=1, max_size=5), st.integers(0, 2**32))
def test_duplicates_change_nothing(batch_sizes: list[int], seed: int) -> None:
    rnd = random.Random(seed)
    stream: list[tuple[str, Envelope]] = []
    for record in records():
        stream.append(record)
        if rnd.random() < 0.5:
            stream.append(record)  # redelivered right away
    assert final_rows(stream, batch_sizes) == baseline()


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(50, 700), min_size=1, max_size=5), st.integers(0, 2**32))
def test_shuffles_within_the_lateness_change_nothing(batch_sizes: list[int], seed: int) -> None:
    rnd = random.Random(seed)

    def arrival(record: tuple[str, Envelope]) -> float:
        return parse_time(record[1].occurred_at).timestamp() + rnd.uniform(0, LATENESS * 0.99)

    shuffled = sorted(records(), key=arrival)
    assert shuffled != list(records())
    assert final_rows(shuffled, batch_sizes) == baseline()
