"""Agent logic under faust's own test harness (``Agent.test_context``), no broker needed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from unittest.mock import AsyncMock

import orjson
import pytest

from streams.config import Settings
from streams.contracts import Envelope, batches, decode, unbatch
from streams.identity.resolver import Resolver
from streams.runtime.app import create_app
from streams.sources.synthetic import SELLER_DOMAIN, generate
from streams.testing import ListSink


@pytest.fixture
def app(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(replace(settings, kafka_bootstrap="127.0.0.1:1"), store="memory://")
    app.finalize()
    app.flow_control.resume()
    sends = {name: AsyncMock() for name in app.rapport_topics}
    for name, topic in app.rapport_topics.items():
        topic.send = sends[name]
    app.sends = sends
    return app


async def test_resolve_sends_each_raw_event_to_its_account(app) -> None:  # type: ignore[no-untyped-def]
    events, _ = generate(2, seed=3, days=10)
    email = next(e for e in events if e.schema == "raw_email/1" and not e.payload["list_unsubscribe"])
    async with app.rapport_agents["resolve"].test_context() as agent:
        await agent.put(email.to_bytes())
    send = app.sends["interactions"]
    send.assert_awaited_once()
    key, value = send.await_args.kwargs["key"], send.await_args.kwargs["value"]
    batch = decode(value)
    assert batch.schema == "interaction_batch/1"
    (interaction,), broken = unbatch(batch)
    assert broken == []
    assert interaction.schema == "interaction/1"
    assert key.decode() == interaction.payload["account_id"] == batch.payload["account_id"]
    assert interaction.payload["source_event_id"] == email.event_id
    assert interaction.payload["direction"] in {"outbound", "inbound"}
    app.sends["deadletter"].assert_not_awaited()


async def test_resolve_dead_letters_bad_input_with_reason(app) -> None:  # type: ignore[no-untyped-def]
    async with app.rapport_agents["resolve"].test_context() as agent:
        await agent.put(b'{"schema": "raw_email/1", "payload": {}}')
        await agent.put(b"\xff not json")
    app.sends["interactions"].assert_not_awaited()
    letters = [decode(c.kwargs["value"]) for c in app.sends["deadletter"].await_args_list]
    assert len(letters) == 2
    reasons = [orjson.loads(orjson.dumps(letter.payload))["reason"] for letter in letters]
    assert "event_id" in reasons[0]
    assert "not valid JSON" in reasons[1]


async def test_score_writes_rows_then_stores_and_publishes_through_the_loop(settings: Settings) -> None:
    sink = ListSink()
    app = create_app(replace(settings, kafka_bootstrap="127.0.0.1:1"), store="memory://", sink=sink)
    app.finalize()
    app.flow_control.resume()
    sends = {name: AsyncMock() for name in app.rapport_topics}
    for name, topic in app.rapport_topics.items():
        topic.send = sends[name]
    events, _ = generate(1, seed=3, days=30)
    resolver = Resolver([SELLER_DOMAIN])
    by_account: dict[str, list[Envelope]] = {}
    for event in events:
        for out in resolver.resolve(event):
            by_account.setdefault(out.account_id, []).append(out.envelope)
    ((account_id, records),) = by_account.items()
    async with app.rapport_agents["score"].test_context() as agent:
        for value in batches(account_id, records):
            await agent.put(value, key=account_id.encode())
            await asyncio.sleep(0.6)  # past the batch window: one step per message
        await agent.put(b"\xff not json", key=account_id.encode())
        await asyncio.sleep(0.6)
    interactions = {e.payload["interaction_id"] for e in records if e.schema == "interaction/1"}
    assert {r["interaction_id"] for r in sink.rows["interactions"]} == interactions
    assert sink.rows["account_health"]
    published = [decode(c.kwargs["value"]) for c in sends["scores"].await_args_list]
    assert published and {p.payload["account_id"] for p in published} == {account_id}
    (letter,) = [decode(c.kwargs["value"]) for c in sends["deadletter"].await_args_list]
    assert letter.payload["stage"] == "score" and "not valid JSON" in letter.payload["reason"]
    assert [r["rejected_id"] for r in sink.rows["rejected_events"]] == [letter.payload["rejected_id"]]


def test_the_agents_producer_sends_large_batches_and_commits_often(app) -> None:  # type: ignore[no-untyped-def]
    """A 16 KB batch (faust's default) made resolve wait on a durable round trip per 16 KB
    (a queue at half the live rate), and the commit interval paces the second hop; the figures
    are in streams/runtime/app.py."""
    from streams.runtime.app import COMMIT_INTERVAL_S, PRODUCER_BATCH_BYTES

    assert app.conf.producer_max_batch_size == PRODUCER_BATCH_BYTES >= 256 * 1024
    assert app.conf.broker_commit_interval == COMMIT_INTERVAL_S <= 0.25
    # sends are not held back until an offset commits (streams/runtime/app.py, COMMIT_INTERVAL_S)
    assert app.conf.stream_publish_on_commit is False


def test_the_ingest_producer_checksums_in_c() -> None:
    """Pure-Python CRC-32C was half of the ingest producer's CPU (streams/runtime/producer.py)."""
    from streams.runtime.producer import checksum_in_c

    assert checksum_in_c()
